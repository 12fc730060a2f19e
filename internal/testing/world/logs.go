package world

import (
	"bufio"
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// LogLine is one JSON line of an app's log.
type LogLine map[string]any

// Str returns the string at key ("" when absent or not a string).
func (l LogLine) Str(key string) string {
	s, _ := l[key].(string)
	return s
}

// LogLines parses the log; a line that is not a JSON object fails the test
// (it would be a forged or broken log line).
func (w *World) LogLines(t testing.TB) []LogLine {
	t.Helper()
	var out []LogLine
	sc := bufio.NewScanner(bytes.NewReader(w.Logs.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not a JSON object: %v\n%s", err, sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// LinesWithMsg returns the log lines whose msg is msg.
func (w *World) LinesWithMsg(t testing.TB, msg string) []LogLine {
	t.Helper()
	var out []LogLine
	for _, l := range w.LogLines(t) {
		if l.Str("msg") == msg {
			out = append(out, l)
		}
	}
	return out
}

// The metrics each kind of invocation publishes, in the order declared.
var (
	EventMetrics = []string{"ImagesShared", "AccountsAdded", "AccountsRemoved", "TargetsRefused", "Errors", "ImagesCopied", "SnapshotsCleaned", "RevocationsBlocked", "KeyPolicyNearLimit", "LeftoverStatements", "ParameterRollbacks", "ParametersPending", "ReceiversUnreachable", "Throttled"}
	SweepMetrics = []string{"ImagesChecked", "DriftRepaired", "SnapshotsCleaned", "SweepSeconds", "Errors", "Throttled"}
)

// Metrics returns the last embedded-metric-format line of the log ("msg"
// "metrics") and checks its shape: a timestamp, one directive in the
// amishare namespace declaring exactly names, in order, each a number at
// the root of the line.
func (w *World) Metrics(t testing.TB, names ...string) LogLine {
	t.Helper()
	lines := w.LinesWithMsg(t, "metrics")
	if len(lines) == 0 {
		t.Fatalf("no metrics line in the log:\n%s", w.Logs)
	}
	l := lines[len(lines)-1]
	emf, _ := l["_aws"].(map[string]any)
	if _, ok := emf["Timestamp"].(float64); !ok {
		t.Errorf("_aws.Timestamp: got %v, want a number", emf["Timestamp"])
	}
	cwm, _ := emf["CloudWatchMetrics"].([]any)
	if len(cwm) != 1 {
		t.Fatalf("_aws.CloudWatchMetrics: got %v, want one directive", emf["CloudWatchMetrics"])
	}
	dir, _ := cwm[0].(map[string]any)
	if ns := dir["Namespace"]; ns != "amishare" {
		t.Errorf("Namespace: got %v, want amishare", ns)
	}
	defs, _ := dir["Metrics"].([]any)
	var got []string
	for _, d := range defs {
		m, _ := d.(map[string]any)
		name, _ := m["Name"].(string)
		got = append(got, name)
		if _, ok := l[name].(float64); !ok {
			t.Errorf("metric %q: got %v at the root, want a number", name, l[name])
		}
	}
	if !slices.Equal(got, names) {
		t.Errorf("metric names: got %v, want %v", got, names)
	}
	return l
}

// WantMetrics checks the values of metrics on the line l.
func WantMetrics(t testing.TB, l LogLine, want map[string]int) {
	t.Helper()
	for name, n := range want {
		if got, _ := l[name].(float64); int(got) != n {
			t.Errorf("metric %s: got %v, want %d", name, l[name], n)
		}
	}
}
