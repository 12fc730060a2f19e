package sweep_test

import (
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
)

// TestSweepRepairsParameters: images deregistered while no event arrived
// leave parameters naming them, here and in a receiver; the sweep's last
// step falls back to the newest image left, and writes nothing when in sync.
func TestSweepRepairsParameters(t *testing.T) {
	const golden = "/amishare/images/golden"
	w := world.New(t, `{"allowedAccounts":["111122223333"],"receivers":["111122223333"],"parameters":{"/amishare/images/golden":"golden-*"},"sweepRate":1000}`)
	a := w.Receiver(t, acctA)
	h := w.Handler(t, app.Options{})
	image := func(name, date string, tags map[string]string) string {
		id, _, err := w.Fixture.RegisterImage(w.Ctx, name, []fixture.Disk{{}}, tags)
		if err != nil {
			t.Fatal(err)
		}
		w.SetCreated(t, id, date)
		return id
	}
	older := image("golden-1", "2024-01-10T10:00:00.000Z", map[string]string{amitag.Accounts: acctA, amitag.Parameter: golden})
	// Never shared (no snapshot record): only this account's parameter names it.
	unshared := image("golden-2", "2024-02-10T10:00:00.000Z", map[string]string{amitag.Accounts: "", amitag.Parameter: golden})
	if sum := sweepNow(t, w, h); sum.Errors != 0 {
		t.Fatalf("first sweep: %+v", sum)
	}
	if got := w.Owner().Parameter(t, w, golden); got != unshared {
		t.Fatalf("parameter %q, want %s", got, unshared)
	}
	if got := a.Parameter(t, w, golden); got != older {
		t.Fatalf("receiver's parameter %q, want %s", got, older)
	}

	// Deregistered without any event.
	w.DeregisterImage(t, unshared)
	sum := sweepNow(t, w, h)
	if got := w.Owner().Parameter(t, w, golden); got != older {
		t.Errorf("after the sweep: parameter %q, want %s", got, older)
	}
	if sum.ParametersChanged != 1 || sum.Errors != 0 {
		t.Errorf("sweep summary: %d parameters changed, %d errors; want 1 and 0", sum.ParametersChanged, sum.Errors)
	}
	// In sync: the next sweep writes no parameter.
	sum = sweepNow(t, w, h)
	if n := w.Calls.Count("PutParameter") + w.Calls.Count("DeleteParameter"); n != 0 || sum.ParametersChanged != 0 {
		t.Errorf("a sweep in sync: %d parameter writes, %d changed; want none", n, sum.ParametersChanged)
	}
	if n := w.Calls.Count("AssumeRole"); n != 1 {
		t.Errorf("a sweep assumed the receiver role %d times, want once (one session per sweep)", n)
	}
}
