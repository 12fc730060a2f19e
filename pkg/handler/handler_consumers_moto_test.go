package handler_test

import (
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
)

// TestConsumerMetrics: an event publishes the parameters rolled back and
// pending, and the receivers that could not be reached; the deregistered
// event rolls the parameter back.
func TestConsumerMetrics(t *testing.T) {
	const golden = "/amishare/images/golden"
	w := world.New(t, `{"allowedAccounts":["111122223333"],"receivers":["111122223333"],"parameters":{"/amishare/images/golden":"golden-*"}}`)
	h := w.Handler(t, app.Options{})
	image := func(name, date string) string {
		id, _, err := w.Fixture.RegisterImage(w.Ctx, name, []fixture.Disk{{}}, map[string]string{amitag.Accounts: acctA, amitag.Parameter: golden})
		if err != nil {
			t.Fatal(err)
		}
		w.SetCreated(t, id, date)
		return id
	}
	older, newer := image("golden-1", "2024-01-10T10:00:00.000Z"), image("golden-2", "2024-02-10T10:00:00.000Z")
	if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-available.json", newer)); err != nil {
		t.Fatal(err)
	}
	// No receiver role in A yet: unreachable, the share made all the same.
	world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"ReceiversUnreachable": 1, "ImagesShared": 1, "Errors": 0, "ParameterRollbacks": 0})
	if got := w.Owner().Parameter(t, w, golden); got != newer {
		t.Fatalf("parameter %q, want %s", got, newer)
	}

	w.Receiver(t, acctA)
	w.DeregisterImage(t, newer)
	if _, err := w.Handle(t, h, world.SampleEvent(t, "ami-deregistered.json", newer)); err != nil {
		t.Fatal(err)
	}
	world.WantMetrics(t, w.Metrics(t, world.EventMetrics...), map[string]int{"ParameterRollbacks": 1, "ReceiversUnreachable": 0, "Errors": 0})
	if got := w.Owner().Parameter(t, w, golden); got != older {
		t.Errorf("after the deregistered event: parameter %q, want %s", got, older)
	}
}
