package app_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	smithy "github.com/aws/smithy-go"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/app"
)

// TestBlockPublicAccessReportedOnceAtStartUp: the Lambda's wiring reads both
// states once, logs them and publishes them as metrics; handling events reads
// them no more.
func TestBlockPublicAccessReportedOnceAtStartUp(t *testing.T) {
	tests := []struct {
		name                  string
		enable                bool
		wantImage, wantSnap   string
		wantMsg               string
		wantImageM, wantSnapM float64
	}{
		{"off (the default)", false, "unblocked", "unblocked", "block public access", 0, 0},
		{"on", true, "block-new-sharing", "block-all-sharing", "block public access", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := world.New(t, `{"allowedAccounts":["111122223333"]}`)
			if tt.enable {
				if _, err := w.Fixture.EC2.EnableImageBlockPublicAccess(w.Ctx, &ec2.EnableImageBlockPublicAccessInput{
					ImageBlockPublicAccessState: ec2types.ImageBlockPublicAccessEnabledStateBlockNewSharing}); err != nil {
					t.Fatal(err)
				}
				if _, err := w.Fixture.EC2.EnableSnapshotBlockPublicAccess(w.Ctx, &ec2.EnableSnapshotBlockPublicAccessInput{
					State: ec2types.SnapshotBlockPublicAccessStateBlockAllSharing}); err != nil {
					t.Fatal(err)
				}
			}
			h := w.App(t, app.Options{ReportBlockPublicAccess: true}).Handler
			lines := w.LinesWithMsg(t, tt.wantMsg)
			if len(lines) != 1 {
				t.Fatalf("log lines %q = %d, want 1:\n%s", tt.wantMsg, len(lines), w.Logs)
			}
			l := lines[0]
			if l.Str("imageBlockPublicAccess") != tt.wantImage || l.Str("snapshotBlockPublicAccess") != tt.wantSnap {
				t.Errorf("logged %v, want image %s snapshot %s", l, tt.wantImage, tt.wantSnap)
			}
			wantLevel := "INFO"
			if !tt.enable {
				wantLevel = "WARN"
			}
			if l.Str("level") != wantLevel {
				t.Errorf("level %s, want %s", l.Str("level"), wantLevel)
			}
			m := w.LinesWithMsg(t, "metrics")
			if len(m) != 1 || m[0]["ImageBlockPublicAccess"] != tt.wantImageM || m[0]["SnapshotBlockPublicAccess"] != tt.wantSnapM {
				t.Errorf("metrics lines %v, want ImageBlockPublicAccess %v SnapshotBlockPublicAccess %v", m, tt.wantImageM, tt.wantSnapM)
			}
			if w.Calls.Count("GetImageBlockPublicAccessState") != 1 || w.Calls.Count("GetSnapshotBlockPublicAccessState") != 1 {
				t.Errorf("calls %v, want each state read once", w.Calls.Calls())
			}
			w.Calls.Reset()
			if _, err := h.Handle(w.Ctx, []byte(`{"source":"my.app","detail-type":"Thing","id":"x"}`)); err != nil {
				t.Fatal(err)
			}
			if n := w.Calls.Count("GetImageBlockPublicAccessState"); n != 0 {
				t.Errorf("an event read the state again (%d calls)", n)
			}
		})
	}
}

// deniedBPA refuses both reads, as IAM does without the permissions.
type deniedBPA struct{}

func (deniedBPA) GetImageBlockPublicAccessState(context.Context, *ec2.GetImageBlockPublicAccessStateInput, ...func(*ec2.Options)) (*ec2.GetImageBlockPublicAccessStateOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not authorized"}
}

func (deniedBPA) GetSnapshotBlockPublicAccessState(context.Context, *ec2.GetSnapshotBlockPublicAccessStateInput, ...func(*ec2.Options)) (*ec2.GetSnapshotBlockPublicAccessStateOutput, error) {
	return nil, errors.New("connection reset")
}

func TestBlockPublicAccessUnreadableIsReportedNotFatal(t *testing.T) {
	logs := &fixture.LogBuffer{}
	st := app.ReportBlockPublicAccess(context.Background(), slog.New(slog.NewJSONHandler(logs, nil)), deniedBPA{})
	if st.Image != app.StateUnknown || st.Snapshot != app.StateUnknown {
		t.Errorf("state %+v, want unknown for both", st)
	}
	out := logs.String()
	for _, want := range []string{`"level":"WARN"`, "UnauthorizedOperation", "connection reset", `"imageBlockPublicAccess":"unknown"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"msg":"metrics"`) {
		t.Errorf("metrics published for unknown states:\n%s", out)
	}
}
