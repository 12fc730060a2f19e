package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/amishare/amishare/pkg/app"
)

// The operator's stderr carries human log lines: "LEVEL message key=value
// ...", without the fields that are empty outside an event (eventId,
// region) and without the metrics blob, which only CloudWatch reads.
// --log-format json brings back the Lambda's JSON lines, metrics included.

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// newLogger logs to w at level; before each line, clear (when set) takes a
// progress bar off the terminal.
func newLogger(w io.Writer, format string, level slog.Level, clear func()) *slog.Logger {
	out := &lineWriter{w: w, clear: clear}
	if format == formatJSON {
		return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(&humanHandler{out: out, level: level})
}

// lineWriter writes whole lines, one at a time, clearing the bar first.
type lineWriter struct {
	mu    sync.Mutex
	w     io.Writer
	clear func()
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clear != nil {
		l.clear()
	}
	return l.w.Write(p)
}

// humanHandler is a slog.Handler for people.
type humanHandler struct {
	out    *lineWriter
	level  slog.Level
	attrs  []slog.Attr
	prefix string // the open groups, "a.b."
}

func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *humanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		a.Key = h.prefix + a.Key
		c.attrs = append(c.attrs[:len(c.attrs):len(c.attrs)], a)
	}
	return &c
}

func (h *humanHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.prefix += name + "."
	return &c
}

func (h *humanHandler) Handle(_ context.Context, r slog.Record) error {
	var metrics bool
	var b bytes.Buffer
	b.WriteString(r.Level.String())
	b.WriteByte(' ')
	b.WriteString(r.Message)
	write := func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Key == "_aws" {
			metrics = true
		}
		if a.Equal(slog.Attr{}) || (a.Value.Kind() == slog.KindString && a.Value.String() == "") {
			return
		}
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(humanValue(a.Value))
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		a.Key = h.prefix + a.Key
		write(a)
		return true
	})
	if metrics {
		return nil // the embedded metric format is for CloudWatch
	}
	b.WriteByte('\n')
	_, err := h.out.Write(b.Bytes())
	return err
}

var bareValue = regexp.MustCompile(`^[A-Za-z0-9_.:/@+=-]+$`)

// humanValue renders a value: bare when it is one plain word, quoted when
// not (a hostile tag value cannot start a line of its own), JSON for lists
// and objects.
func humanValue(v slog.Value) string {
	var s string
	switch v.Kind() {
	case slog.KindString:
		s = v.String()
	case slog.KindAny:
		b, err := json.Marshal(v.Any())
		if err != nil {
			s = fmt.Sprint(v.Any())
		} else {
			return string(b)
		}
	default:
		return v.String()
	}
	if bareValue.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// withRole is the app's options for a command that acts as the function
// does in the region it names (handle).
func withRole(c *cli, dryRun bool) app.Options {
	return app.Options{Log: c.logger(), DryRun: dryRun, RoleARN: c.roleARN, Region: c.region}
}

var roleARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

func isRoleARN(s string) bool { return roleARNRe.MatchString(s) && !strings.HasSuffix(s, "/") }
