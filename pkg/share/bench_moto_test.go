package share_test

import (
	"fmt"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
)

// BenchmarkReconcile measures one reconcile against moto and reports the
// AWS calls it costs (calls/op, mutating/op): API calls, not seconds, are
// amishare's real cost, since EC2 throttles mutating calls per account.
func BenchmarkReconcile(b *testing.B) {
	for _, disks := range []int{1, 4, 16} {
		for _, encrypted := range []bool{false, true} {
			b.Run(fmt.Sprintf("snapshots=%d/encrypted=%v/unchanged", disks, encrypted), func(b *testing.B) {
				e := newEnv(b, testConfig)
				var ds []fixture.Disk
				for range disks {
					d := fixture.Disk{}
					if encrypted {
						k := e.Key(b)
						d.KeyID = k
					}
					ds = append(ds, d)
				}
				id, _ := e.Image(b, ds, map[string]string{amitag.Accounts: acctA + " " + acctB})
				if _, err := e.engine.Reconcile(e.Ctx, id, share.Options{}); err != nil {
					b.Fatal(err)
				}
				e.Calls.Reset()
				b.ResetTimer()
				for b.Loop() {
					if _, err := e.engine.Reconcile(e.Ctx, id, share.Options{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(e.Calls.Calls()))/float64(b.N), "calls/op")
				b.ReportMetric(float64(len(e.Calls.Mutating()))/float64(b.N), "mutating/op")
			})
		}
	}
	// The first share of an image with S snapshots and K customer-managed
	// keys, everything changing, configuration read afresh: calls/op is to
	// stay within budget/op (7 + 2S + 5K, see firstShareBudget).
	for _, c := range []struct{ snapshots, keys int }{{1, 1}, {4, 2}, {16, 4}} {
		b.Run(fmt.Sprintf("snapshots=%d/keys=%d/first-share", c.snapshots, c.keys), func(b *testing.B) {
			e := newEnv(b, testConfig)
			calls := 0
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				run := prepareFirstShare(b, e, c.snapshots, c.keys)
				b.StartTimer()
				n, _ := run()
				b.StopTimer()
				calls += n
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
			b.ReportMetric(float64(firstShareBudget(c.snapshots, c.keys)), "budget/op")
		})
	}
}
