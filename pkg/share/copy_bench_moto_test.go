package share_test

import (
	"fmt"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/share"
)

// BenchmarkFirstShareWithCopy reports the AWS calls of a first reconcile of
// an image tagged with one destination region: sharing it here, finding
// (no) copies there, CopyImage with its tags, and the source's status and
// amishare:copies tags. Then the same reconcile again (nothing to do), and
// the copy's own first share in its region.
func BenchmarkFirstShareWithCopy(b *testing.B) {
	for _, encrypted := range []bool{false, true} {
		e := newEnv(b, "")
		euKey, err := e.Fixture.In("eu-west-1").CreateKey(e.Ctx, "bench eu")
		if err != nil {
			b.Fatal(err)
		}
		doc := fmt.Sprintf(`{"allowedAccounts":["%s","%s"],"allowedRegions":["eu-west-1"],"copyKeys":{"eu-west-1":"%s"}}`, acctA, acctB, euKey)
		e.PutConfig(b, doc)
		disk := fixture.Disk{}
		if encrypted {
			if disk.KeyID, err = e.Fixture.CreateKey(e.Ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
		pool := e.App(b, app.Options{}).Pool
		home, eu := pool.Engine(""), pool.Engine("eu-west-1")
		tags := map[string]string{amitag.Accounts: acctA + " " + acctB, amitag.Regions: "eu-west-1"}
		newSource := func(b *testing.B) string {
			b.Helper()
			id, _ := e.Image(b, []fixture.Disk{disk}, tags)
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
				e.Calls.Reset()
				b.StartTimer()
				res, err := home.Reconcile(e.Ctx, id, share.Options{})
				if err != nil || res.Plan == nil || len(res.Plan.Copies) != 1 {
					b.Fatalf("reconcile: %v %+v", err, res)
				}
				calls, mutating = calls+len(e.Calls.Calls()), mutating+len(e.Calls.Mutating())
			}
			report(b, calls, mutating)
		})
		b.Run(fmt.Sprintf("encrypted=%v/source-unchanged", encrypted), func(b *testing.B) {
			id := newSource(b)
			if _, err := home.Reconcile(e.Ctx, id, share.Options{}); err != nil {
				b.Fatal(err)
			}
			e.Calls.Reset()
			for b.Loop() {
				if _, err := home.Reconcile(e.Ctx, id, share.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, len(e.Calls.Calls()), len(e.Calls.Mutating()))
		})
		b.Run(fmt.Sprintf("encrypted=%v/copy-first-share", encrypted), func(b *testing.B) {
			calls, mutating := 0, 0
			for b.Loop() {
				b.StopTimer()
				id := newSource(b)
				res, err := home.Reconcile(e.Ctx, id, share.Options{})
				if err != nil || res.Plan == nil || len(res.Plan.Copies) != 1 {
					b.Fatalf("reconcile: %v %+v", err, res)
				}
				e.Calls.Reset()
				b.StartTimer()
				if _, err := eu.Reconcile(e.Ctx, res.Plan.Copies[0].ImageID, share.Options{}); err != nil {
					b.Fatal(err)
				}
				calls, mutating = calls+len(e.Calls.Calls()), mutating+len(e.Calls.Mutating())
			}
			report(b, calls, mutating)
		})
	}
}
