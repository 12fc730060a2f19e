package share_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
)

// BenchmarkConsumerSide measures what the other side of the share costs
// per receiver, in AWS calls (calls/op and mutating/op, all of them;
// receiver-calls/op, those made through a receiver's role; sessions/op, the
// AssumeRole calls that open them): an image
// feeding one parameter and carrying one mirrored tag, shared with every
// receiver, reconciled unchanged (every event or sweep of an image in
// sync), and a newer image taking the parameter over (a new golden
// image's first share). With encrypted=true the image's key also gives
// each receiver its Auto Scaling grant (autoScalingGrants); each newer
// image has a key of its own, so its statements and grants are all new.
func BenchmarkConsumerSide(b *testing.B) {
	receivers := []string{acctA, acctB, acctC, acctD}
	for _, encrypted := range []bool{false, true} {
		for _, n := range []int{0, 1, 4} {
			setup := func(b *testing.B, newKeys bool) (*env, string, func(string) string) {
				cfg := fmt.Sprintf(`{"allowedAccounts":["%s"],"receivers":[%s],"parameters":{"%s":"golden-*"},"mirrorTags":["team"],"autoScalingGrants":%v}`,
					strings.Join(receivers, `","`), quoted(receivers[:n]), golden, encrypted)
				e := newEnv(b, cfg)
				for _, r := range receivers[:n] {
					e.Receiver(b, r).AutoScalingRole(b, e.World)
				}
				key := ""
				if encrypted {
					key = e.Key(b)
				}
				day := 0
				image := func(accounts string) string {
					day++
					if encrypted && day > 1 && newKeys {
						key = e.Key(b) // its statements and grants are all new
					}
					id, _, err := e.Fixture.RegisterImage(e.Ctx, fmt.Sprintf("golden-%d", day), []fixture.Disk{{KeyID: key}},
						map[string]string{amitag.Accounts: accounts, amitag.Parameter: golden, "team": "platform"})
					if err != nil {
						b.Fatal(err)
					}
					e.SetCreated(b, id, fmt.Sprintf("2024-01-01T00:%02d:%02d.000Z", day/60, day%60))
					return id
				}
				return e, strings.Join(receivers, " "), image
			}
			report := func(b *testing.B, e *env) {
				b.ReportMetric(float64(len(e.Calls.Calls()))/float64(b.N), "calls/op")
				b.ReportMetric(float64(len(e.Calls.Mutating()))/float64(b.N), "mutating/op")
				b.ReportMetric(float64(e.Calls.ViaReceivers())/float64(b.N), "receiver-calls/op")
				b.ReportMetric(float64(e.Calls.Count("AssumeRole"))/float64(b.N), "sessions/op")
			}
			b.Run(fmt.Sprintf("encrypted=%v/receivers=%d/unchanged", encrypted, n), func(b *testing.B) {
				e, accounts, image := setup(b, false)
				id := image(accounts)
				if _, err := e.engine.Reconcile(e.Ctx, id, share.Options{}); err != nil {
					b.Fatal(err)
				}
				e.Calls.Reset()
				for b.Loop() {
					if _, err := e.engine.Reconcile(e.Ctx, id, share.Options{}); err != nil {
						b.Fatal(err)
					}
				}
				report(b, e)
			})
			b.Run(fmt.Sprintf("encrypted=%v/receivers=%d/newer-image", encrypted, n), func(b *testing.B) {
				e, accounts, image := setup(b, true)
				first := image(accounts)
				if _, err := e.engine.Reconcile(e.Ctx, first, share.Options{}); err != nil {
					b.Fatal(err)
				}
				e.Calls.Reset()
				b.StopTimer()
				for i := 0; i < b.N; i++ {
					id := image(accounts)
					b.StartTimer()
					if _, err := e.engine.Reconcile(e.Ctx, id, share.Options{}); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
				}
				report(b, e)
			})
		}
	}
}

func quoted(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return `"` + strings.Join(ss, `","`) + `"`
}
