package handler_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/handler"
)

const (
	acctA    = "111122223333" // allowed
	acctB    = "444455556666" // allowed
	acctC    = "777788889999" // in group prod
	acctD    = "222233334444" // in group prod
	outsider = "999999999999" // in no list
	param    = "/amishare/test-config"
	// testConfig allows A and B, and group prod = C and D.
	testConfig = `{"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999","222233334444"]}}`
	// sampleImage is the image id in every events/*.json sample.
	sampleImage = "ami-0123456789abcdef0"
)

// allowed is every account testConfig allows.
var allowed = []string{acctA, acctB, acctC, acctD}

// world is one test's AWS: moto reached through the environment, as the
// Lambda reaches AWS, a fixture to seed and inspect it, a log of the
// handler's calls and the handler's log output.
type world struct {
	ctx   context.Context
	fx    *fixture.Fixture
	calls *fixture.CallLog
	logs  *fixture.LogBuffer
}

// newWorld resets moto, points the SDK's default chain at it and stores
// configDoc in the configuration parameter (none when configDoc is "").
func newWorld(t *testing.T, configDoc string) *world {
	t.Helper()
	return &world{ctx: context.Background(), fx: fixture.ForTest(t, param, configDoc), calls: &fixture.CallLog{}, logs: &fixture.LogBuffer{}}
}

func (w *world) putConfig(t *testing.T, doc string) {
	t.Helper()
	if err := w.fx.PutConfig(w.ctx, param, doc); err != nil {
		t.Fatal(err)
	}
}

// handler builds a handler with app.New, the way the Lambda does, that
// logs to w.logs and records its calls in w.calls. Retries wait at most a
// few milliseconds, so injected faults cost no time.
func (w *world) handler(t *testing.T, opts app.Options) *handler.Handler {
	t.Helper()
	opts.Log = slog.New(slog.NewJSONHandler(w.logs, nil))
	opts.APIOptions = append([]func(*middleware.Stack) error{w.calls.APIOption}, opts.APIOptions...)
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Millisecond
	}
	a, err := app.New(w.ctx, opts)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	return a.Handler
}

// image registers an available image with the given disks and tags.
func (w *world) image(t *testing.T, disks []fixture.Disk, tags map[string]string) (string, []string) {
	t.Helper()
	id, snaps, err := w.fx.RegisterImage(w.ctx, strings.ReplaceAll(t.Name(), "/", "-"), disks, tags)
	if err != nil {
		t.Fatal(err)
	}
	return id, snaps
}

// plainImage registers an image with n unencrypted disks.
func (w *world) plainImage(t *testing.T, n int, tags map[string]string) (string, []string) {
	t.Helper()
	return w.image(t, make([]fixture.Disk, n), tags)
}

func (w *world) tags(t *testing.T, id string) map[string]string {
	t.Helper()
	tags, err := w.fx.Tags(w.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

func (w *world) imagePerms(t *testing.T, id string) fixture.Perms {
	t.Helper()
	p, err := w.fx.LaunchPermissions(w.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) snapshotPerms(t *testing.T, id string) fixture.Perms {
	t.Helper()
	p, err := w.fx.VolumePermissions(w.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantShared checks, from the owner's side, that the image and each of its
// snapshots are shared with exactly accounts and are not public.
func (w *world) wantShared(t *testing.T, id string, snaps []string, accounts ...string) {
	t.Helper()
	if err := w.fx.SharedExactly(w.ctx, id, snaps, accounts); err != nil {
		t.Error(err)
	}
}

// wantOnlyAllowed checks that nothing behind the image is shared with an
// account outside the allowlist or with everyone.
func (w *world) wantOnlyAllowed(t *testing.T, id string, snaps []string) {
	t.Helper()
	check := func(what string, p fixture.Perms) {
		if p.Public {
			t.Errorf("%s is public", what)
		}
		for _, a := range p.Accounts {
			if !slices.Contains(allowed, a) {
				t.Errorf("%s is shared with %s, outside the allowlist", what, a)
			}
		}
	}
	check("image "+id, w.imagePerms(t, id))
	for _, s := range snaps {
		check("snapshot "+s, w.snapshotPerms(t, s))
	}
}

func (w *world) wantStatus(t *testing.T, id, status, msgContains string) {
	t.Helper()
	tags := w.tags(t, id)
	if tags[amitag.Status] != status {
		t.Errorf("%s: got %q (message %q), want %q", amitag.Status, tags[amitag.Status], tags[amitag.Message], status)
	}
	if !strings.Contains(tags[amitag.Message], msgContains) {
		t.Errorf("%s: got %q, want it to contain %q", amitag.Message, tags[amitag.Message], msgContains)
	}
}

func (w *world) keyAccounts(t *testing.T, keyARN string) []string {
	t.Helper()
	a, err := w.fx.KeyAccounts(w.ctx, keyARN)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// handle delivers raw to h with a fresh call log.
func (w *world) handle(t *testing.T, h *handler.Handler, raw []byte) (handler.Summary, error) {
	t.Helper()
	w.calls.Reset()
	return h.Handle(w.ctx, raw)
}

// sampleEvent reads events/name with the sample image id replaced by imageID.
func sampleEvent(t *testing.T, name, imageID string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte(sampleImage), []byte(imageID))
}

// logLine is one JSON line of the handler's log.
type logLine map[string]any

func (l logLine) str(key string) string {
	s, _ := l[key].(string)
	return s
}

// lines parses the log; a line that is not a JSON object fails the test
// (it would be a forged or broken log line).
func (w *world) lines(t *testing.T) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(w.logs.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not a JSON object: %v\n%s", err, sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// linesWithMsg returns the log lines with msg.
func (w *world) linesWithMsg(t *testing.T, msg string) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range w.lines(t) {
		if l.str("msg") == msg {
			out = append(out, l)
		}
	}
	return out
}
