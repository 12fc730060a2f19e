package share_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/share"
)

// BenchmarkFirstShareWithCopy reports the AWS calls of a first reconcile of
// an image tagged with one destination region: sharing it here, finding
// (no) copies there, CopyImage with its tags, and the source's status and
// amishare:copies tags. Then the same reconcile again (nothing to do), and
// the copy's own first share in its region.
func BenchmarkFirstShareWithCopy(b *testing.B) {
	for _, encrypted := range []bool{false, true} {
		e := newEnvTB(b, "")
		euKey, err := e.fx.In("eu-west-1").CreateKey(e.ctx, "bench eu")
		if err != nil {
			b.Fatal(err)
		}
		doc := fmt.Sprintf(`{"allowedAccounts":["%s","%s"],"allowedRegions":["eu-west-1"],"copyKeys":{"eu-west-1":"%s"}}`, acctA, acctB, euKey)
		if err := e.fx.PutConfig(e.ctx, param, doc); err != nil {
			b.Fatal(err)
		}
		disk := fixture.Disk{}
		if encrypted {
			if disk.KeyID, err = e.fx.CreateKey(e.ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
		pool := &share.Pool{
			Home:   "us-east-1",
			Config: &config.Loader{API: ssm.NewFromConfig(e.awsCfg), Parameter: param},
			Log:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
			NewEC2: func(region string) share.EC2API {
				return ec2.NewFromConfig(e.awsCfg, func(o *ec2.Options) {
					o.Region = region
					o.APIOptions = append(o.APIOptions, e.calls.APIOption)
				})
			},
			NewKMS: func(region string) share.KMSAPI {
				return kms.NewFromConfig(e.awsCfg, func(o *kms.Options) {
					o.Region = region
					o.APIOptions = append(o.APIOptions, e.calls.APIOption)
				})
			},
		}
		home, eu := pool.Engine(""), pool.Engine("eu-west-1")
		tags := map[string]string{amitag.Accounts: acctA + " " + acctB, amitag.Regions: "eu-west-1"}
		newSource := func(b *testing.B) string {
			b.Helper()
			id, _, err := e.fx.RegisterImage(e.ctx, "bench", []fixture.Disk{disk}, tags)
			if err != nil {
				b.Fatal(err)
			}
			return id
		}
		report := func(b *testing.B, calls, mutating int) {
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			b.ReportMetric(float64(mutating)/float64(b.N), "mutating/op")
		}
		b.Run(fmt.Sprintf("encrypted=%v/source", encrypted), func(b *testing.B) {
			calls, mutating := 0, 0
			for b.Loop() {
				b.StopTimer()
				id := newSource(b)
				e.calls.Reset()
				b.StartTimer()
				res, err := home.Reconcile(e.ctx, id, share.Options{})
				if err != nil || res.Plan == nil || len(res.Plan.Copies) != 1 {
					b.Fatalf("reconcile: %v %+v", err, res)
				}
				calls, mutating = calls+len(e.calls.Calls()), mutating+len(e.calls.Mutating())
			}
			report(b, calls, mutating)
		})
		b.Run(fmt.Sprintf("encrypted=%v/source-unchanged", encrypted), func(b *testing.B) {
			id := newSource(b)
			if _, err := home.Reconcile(e.ctx, id, share.Options{}); err != nil {
				b.Fatal(err)
			}
			e.calls.Reset()
			for b.Loop() {
				if _, err := home.Reconcile(e.ctx, id, share.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, len(e.calls.Calls()), len(e.calls.Mutating()))
		})
		b.Run(fmt.Sprintf("encrypted=%v/copy-first-share", encrypted), func(b *testing.B) {
			calls, mutating := 0, 0
			for b.Loop() {
				b.StopTimer()
				id := newSource(b)
				res, err := home.Reconcile(e.ctx, id, share.Options{})
				if err != nil || res.Plan == nil || len(res.Plan.Copies) != 1 {
					b.Fatalf("reconcile: %v %+v", err, res)
				}
				e.calls.Reset()
				b.StartTimer()
				if _, err := eu.Reconcile(e.ctx, res.Plan.Copies[0].ImageID, share.Options{}); err != nil {
					b.Fatal(err)
				}
				calls, mutating = calls+len(e.calls.Calls()), mutating+len(e.calls.Mutating())
			}
			report(b, calls, mutating)
		})
	}
}
