package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestHumanLogs(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(&b, formatText, slog.LevelInfo, nil).With("kind", "operator")
	log.InfoContext(context.Background(), "image reconciled", "eventId", "", "region", "", "imageId", "ami-1", "changes", 2,
		"statusMessage", "shared with 1 account(s)", "targets", []string{acctA}, "forged", "x\nERROR y")
	log.DebugContext(context.Background(), "not shown")
	log.InfoContext(context.Background(), "metrics", "_aws", map[string]any{"Timestamp": 1}, "Errors", 0.0)
	want := `INFO image reconciled kind=operator imageId=ami-1 changes=2 statusMessage="shared with 1 account(s)" targets=["111122223333"] forged="x\nERROR y"` + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	newLogger(&b, formatJSON, slog.LevelInfo, nil).Info("metrics", "_aws", map[string]any{"Timestamp": 1})
	if !strings.Contains(b.String(), `"_aws":{"Timestamp":1}`) {
		t.Errorf("--log-format json: got %s, want the metrics", b.String())
	}
}

func TestColour(t *testing.T) {
	orig := isTerminal
	t.Cleanup(func() { isTerminal = orig })
	for _, tc := range []struct {
		terminal bool
		noColor  string
		want     bool
	}{
		{true, "", true},
		{true, "1", false},
		{false, "", false},
	} {
		isTerminal = func(io.Writer) bool { return tc.terminal }
		t.Setenv("NO_COLOR", tc.noColor)
		if got := colour(io.Discard); got != tc.want {
			t.Errorf("terminal %v, NO_COLOR %q: got %v, want %v", tc.terminal, tc.noColor, got, tc.want)
		}
	}
}
