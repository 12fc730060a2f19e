package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
)

// RuntimeLog is the output of the standard log package in the Lambda: the
// aws-lambda-go runtime writes through it. The runtime logs every function
// error's payload ({"errorMessage":…,"errorType":…}) although the handler
// has already logged that error, with the request id, as one ERROR line; so
// RuntimeLog drops exactly those lines, and passes every other line on as a
// WARN record (a panic's payload, with its stackTrace, is kept).
type RuntimeLog struct {
	Log *slog.Logger
}

// Write takes one line from the log package.
func (w RuntimeLog) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	if isErrorPayload(line) {
		return len(p), nil
	}
	w.Log.Warn("lambda runtime", "line", string(line))
	return len(p), nil
}

// isErrorPayload reports whether line is the runtime's report of a returned
// error: an object with errorMessage and errorType and no stack trace.
func isErrorPayload(line []byte) bool {
	var payload map[string]json.RawMessage
	if json.Unmarshal(line, &payload) != nil {
		return false
	}
	_, msg := payload["errorMessage"]
	_, typ := payload["errorType"]
	_, stack := payload["stackTrace"]
	return msg && typ && !stack
}
