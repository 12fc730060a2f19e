package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
)

// TestLambdaSweep: the real bootstrap under the emulator, with the stack's
// sweep queue and lease, receives the scheduled event and sweeps (an image
// whose event was lost is shared, a deregistered image's snapshots are
// unshared), then the SQS events of the sweep's queue: a continuation of a
// sweep no longer in progress, or of a made-up one, is refused (no error:
// no retry would change it), and a message that is no continuation is a
// function error (SQS retries it, then its redrive policy keeps it in the
// sweep's dead-letter queue).
func TestLambdaSweep(t *testing.T) {
	le := newLambdaEnv(t, `{"allowedAccounts":["`+acctA+`"],"sweepRate":1000}`)
	ctx, fx := le.Ctx, le.Fixture
	em := le.start(t, "AMISHARE_SWEEP_QUEUE_URL="+le.SweepQueue(t), "AMISHARE_SWEEP_LEASE_TABLE="+le.SweepLease(t))
	tags := map[string]string{amitag.Accounts: acctA}
	gone, gsnaps := le.Image(t, make([]fixture.Disk, 2), tags)
	if status, raw := em.invoke(t, "e2e-sweep-01", readEvent(t, "ami-available.json", gone, true)); status != http.StatusOK {
		t.Fatalf("sharing %s: HTTP %d %s", gone, status, raw)
	}
	le.WantShared(t, gone, gsnaps, acctA)
	le.DeregisterImage(t, gone)
	lost, lsnaps := le.Image(t, make([]fixture.Disk, 1), tags)

	type sweepSummary struct {
		SweepID          string          `json:"sweepId"`
		ResumedAt        json.RawMessage `json:"resumedAt"`
		ImagesChecked    int             `json:"imagesChecked"`
		DriftRepaired    int             `json:"driftRepaired"`
		GoneImages       int             `json:"goneImages"`
		SnapshotsCleaned int             `json:"snapshotsCleaned"`
		Errors           int             `json:"errors"`
	}
	var got struct {
		Kind         string         `json:"kind"`
		Ignored      string         `json:"ignored"`
		Sweeps       []sweepSummary `json:"sweeps"`
		ErrorMessage string         `json:"errorMessage"`
	}
	invoke := func(requestID string, body []byte) int {
		t.Helper()
		got.Kind, got.Ignored, got.Sweeps, got.ErrorMessage = "", "", nil, ""
		status, raw := em.invoke(t, requestID, body)
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: response is not JSON: %v: %s", requestID, err, raw)
		}
		return status
	}

	if status := invoke("e2e-sweep-02", readEvent(t, "scheduled-sweep.json", world.SampleImage, false)); status != http.StatusOK || len(got.Sweeps) != 1 {
		t.Fatalf("scheduled event: HTTP %d, %+v", status, got)
	}
	s := got.Sweeps[0]
	if got.Kind != "scheduled" || s.ImagesChecked != 1 || s.DriftRepaired != 1 || s.GoneImages != 1 || s.SnapshotsCleaned != 2 || s.Errors != 0 {
		t.Errorf("scheduled sweep: kind %q %+v, want 1 image checked and repaired, 1 gone image with 2 snapshots cleaned", got.Kind, s)
	}
	le.WantShared(t, lost, lsnaps, acctA)
	for _, snap := range gsnaps {
		if p, err := fx.VolumePermissions(ctx, snap); err != nil || len(p.Accounts) != 0 {
			t.Errorf("snapshot %s of the deregistered image: %v %v, want no permission", snap, p.Accounts, err)
		}
	}
	var done, metrics bool
	for _, r := range em.records(t, "e2e-sweep-02") {
		done = done || r["message"] == "sweep done"
		metrics = metrics || (r["message"] == "metrics" && r["ImagesChecked"] == 1.0 && r["SnapshotsCleaned"] == 2.0)
	}
	if !done || !metrics {
		t.Errorf("logs of the scheduled sweep: sweep done %v, metrics %v; want both", done, metrics)
	}

	sqsEvent := func(body string) []byte {
		b, _ := json.Marshal(map[string]any{"Records": []map[string]any{{
			"messageId": "e2e-message", "receiptHandle": "r", "body": body, "eventSource": "aws:sqs",
			"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:amishare-SweepQueue", "awsRegion": "us-east-1",
		}}})
		return b
	}
	for i, c := range []struct{ name, sweepID string }{{"the sweep just completed", s.SweepID}, {"a made-up sweep", "A1B2C3D4E5F6G7H8"}} {
		body := `{"amishareSweep":{"sweepId":"` + c.sweepID + `","phase":"images","after":"` + lost + `"}}`
		requestID := fmt.Sprintf("e2e-sweep-03-%d", i)
		if status := invoke(requestID, sqsEvent(body)); status != http.StatusOK || got.ErrorMessage != "" {
			t.Fatalf("continuation of %s: HTTP %d, %+v; want it handled", c.name, status, got)
		}
		if got.Kind != "sweep-continuation" || len(got.Sweeps) != 0 || !strings.Contains(got.Ignored, "no sweep is in progress") {
			t.Errorf("continuation of %s: kind %q, ignored %q, sweeps %+v; want it refused", c.name, got.Kind, got.Ignored, got.Sweeps)
		}
		refused := false
		for _, r := range em.records(t, requestID) {
			refused = refused || (r["message"] == "event ignored" && r["level"] == "WARN")
		}
		if !refused {
			t.Errorf("continuation of %s: no warning logged", c.name)
		}
	}

	invoke("e2e-sweep-04", sqsEvent(`{"hello":"world"}`))
	if !strings.Contains(got.ErrorMessage, "sweep continuation") {
		t.Errorf("a message that is no continuation: errorMessage %q, want a function error naming the sweep continuation", got.ErrorMessage)
	}
}
