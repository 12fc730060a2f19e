package main

import (
	"bytes"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"testing"
)

func TestRuntimeLog(t *testing.T) {
	tests := []struct {
		name string
		line string
		kept bool
	}{
		{"returned error, already logged by the handler", `{"errorMessage":"event: not valid JSON","errorType":"errorString"}`, false},
		{"panic keeps its stack", `{"errorMessage":"boom","errorType":"runtime.Error","stackTrace":[{"path":"x.go","line":1}],"shouldExit":true}`, true},
		{"plain runtime warning", `WARNING! Failed to register internal extension!`, true},
		{"other JSON", `{"errorMessage":"no type"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			std := log.New(RuntimeLog{Log: slog.New(slog.NewJSONHandler(&buf, nil))}, "", 0)
			std.Print(tt.line)
			if got := buf.Len() > 0; got != tt.kept {
				t.Fatalf("kept = %v, want %v (output %q)", got, tt.kept, buf.String())
			}
			if !tt.kept {
				return
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec["level"] != "WARN" || !strings.Contains(rec["line"].(string), strings.TrimSpace(tt.line)) {
				t.Errorf("record = %v, want level WARN and the line", rec)
			}
		})
	}
}
