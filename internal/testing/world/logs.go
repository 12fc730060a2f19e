package world

import (
	"bufio"
	"bytes"
	"encoding/json"
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
