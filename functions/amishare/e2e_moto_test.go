package main

// End to end: the real bootstrap, built as the Makefile builds it, runs under
// the AWS Lambda Runtime Interface Emulator (the emulator SAM and the Lambda
// base images use) against a patched moto. Events are POSTed to the emulator
// as Lambda's invoke API would deliver them; the test then reads the result
// from the owner's side of moto, from the response and from the function's
// JSON logs. The emulator is a Go tool dependency (go.mod's tool line), so the
// test builds it from the module cache and needs nothing installed but moto.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
)

const (
	// rieTool is the emulator's main package, pinned by go.mod's tool directive.
	rieTool = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	// invokePath is where the emulator accepts invocations of its one function.
	invokePath = "/2015-03-31/functions/function/invocations"

	e2eConfig = `{"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999"]}}`
	acctA     = "111122223333"
	acctB     = "444455556666"
	acctProd  = "777788889999"

	// emulatorStartTimeout bounds the wait for the emulator's two listeners.
	emulatorStartTimeout = 15 * time.Second
	// invokeTimeout bounds one invocation, init included (the function's own
	// timeout, AWS_LAMBDA_FUNCTION_TIMEOUT, is shorter).
	invokeTimeout = 90 * time.Second
	// logTimeout bounds the wait for an invocation's END line after the response.
	logTimeout = 10 * time.Second
	// stopGrace is how long the emulator gets after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
)

// artifacts holds the binaries built once per test binary; TestMain removes them.
var artifacts struct {
	once      sync.Once
	dir       string
	root      string // module root, where events/ lives
	rie       string
	bootstrap string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if artifacts.dir != "" {
		os.RemoveAll(artifacts.dir)
	}
	os.Exit(code)
}

// buildArtifacts builds the emulator and the bootstrap, once. A build failure
// fails the test: it is never a reason to skip.
func buildArtifacts(t *testing.T) {
	t.Helper()
	artifacts.once.Do(func() { artifacts.err = build() })
	if artifacts.err != nil {
		t.Fatalf("building the end-to-end binaries: %v", artifacts.err)
	}
}

func build() error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the bootstrap and the emulator: %w", err)
	}
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("go env GOMOD: not inside a module")
	}
	artifacts.root = filepath.Dir(gomod)
	if artifacts.dir, err = os.MkdirTemp("", "amishare-e2e-"); err != nil {
		return err
	}
	artifacts.rie = filepath.Join(artifacts.dir, "aws-lambda-rie")
	artifacts.bootstrap = filepath.Join(artifacts.dir, "bootstrap")
	// As the Makefile's build-AmishareFunction, but for this machine: the test runs it here.
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	for _, args := range [][]string{
		{"build", "-o", artifacts.rie, rieTool},
		{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", artifacts.bootstrap, "./functions/amishare"},
	} {
		cmd := exec.Command(goTool, args...)
		cmd.Dir = artifacts.root
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// TestLambdaUnderEmulator drives the real bootstrap through a sequence of
// events against one image; each step depends on the state the previous ones
// left, so the steps run in order and the first failure stops the rest.
func TestLambdaUnderEmulator(t *testing.T) {
	le := newLambdaEnv(t, e2eConfig)
	imageID, snaps := le.Image(t, make([]fixture.Disk, 3),
		map[string]string{amitag.Accounts: acctA + " prod"})
	em := le.start(t)

	retag := func(value string) func(t *testing.T) {
		return func(t *testing.T) {
			le.Tag(t, imageID, map[string]string{amitag.Accounts: value})
		}
	}
	// changes lists what sharing with (or revoking from) accounts does: each
	// snapshot, then the image, per account.
	changes := func(action string, accounts ...string) []change {
		var out []change
		for _, a := range accounts {
			for _, s := range snaps {
				out = append(out, change{ImageID: imageID, SnapshotID: s, Account: a, Action: action})
			}
			out = append(out, change{ImageID: imageID, Account: a, Action: action})
		}
		return out
	}
	const sharedWith2 = "shared with 2 account(s)"

	steps := []step{
		{
			name: "available shares image and snapshots", event: "ami-available.json",
			wantKind: "ami-state-change", wantOutcome: "applied", wantStatus: "shared", wantLog: "image reconciled",
			wantChanges: changes("add", acctA, acctProd),
			wantShared:  []string{acctA, acctProd}, wantTag: "shared", wantMessage: sharedWith2,
		},
		{
			name: "redelivery changes nothing", event: "ami-available.json",
			wantKind: "ami-state-change", wantOutcome: "applied", wantStatus: "shared",
			wantShared: []string{acctA, acctProd}, wantTag: "shared", wantMessage: sharedWith2,
		},
		{
			name: "tag change revokes the group", setup: retag(acctA), event: "tag-change.json",
			wantKind: "tag-change", wantOutcome: "applied", wantStatus: "shared",
			wantChanges: changes("remove", acctProd),
			wantShared:  []string{acctA}, wantTag: "shared", wantMessage: "shared with 1 account(s)",
		},
		{
			name: "CloudTrail CreateTags adds an account", setup: retag(acctA + " " + acctB), event: "cloudtrail-create-tags.json",
			wantKind: "api-call", wantOutcome: "applied", wantStatus: "shared",
			wantChanges: changes("add", acctB),
			wantShared:  []string{acctA, acctB}, wantTag: "shared", wantMessage: sharedWith2,
		},
		// From here the tag asks for B only, without an event: a step that
		// wrongly reconciled would revoke A, and the checks would see it.
		{
			name: "status-only tag change is ignored", setup: retag(acctB), event: "tag-change-status-only.json",
			wantKind: "tag-change", wantIgnored: true, wantLog: "event ignored",
			wantShared: []string{acctA, acctB}, wantTag: "shared", wantMessage: sharedWith2,
		},
		{
			// A failed image is looked at (it may be a copy amishare made);
			// this one is not a copy, so it is left alone.
			name: "failed AMI that is not a copy is skipped", event: "ami-failed.json",
			wantKind: "ami-state-change", wantOutcome: "skipped",
			wantShared: []string{acctA, acctB}, wantTag: "shared", wantMessage: sharedWith2,
		},
		{
			name: "pending AMI is ignored", event: "ami-pending.json",
			wantKind: "ami-state-change", wantIgnored: true,
			wantShared: []string{acctA, acctB}, wantTag: "shared", wantMessage: sharedWith2,
		},
		{
			name: "other event is ignored", event: "other-event.json",
			wantKind: "other", wantIgnored: true,
			wantShared: []string{acctA, acctB}, wantTag: "shared", wantMessage: sharedWith2,
		},
		// The handler takes the raw payload (lambda.Handler), so invalid JSON
		// gets amishare's own clear error, not the Lambda library's.
		{
			name: "invalid JSON is a function error", body: `{"version":"0","id":"x","detail-type":`,
			wantFuncError: true, wantErrorText: "not valid JSON", wantLog: "event rejected",
			wantShared: []string{acctA, acctB}, wantTag: "shared", wantMessage: sharedWith2,
		},
		{
			name: "malformed AMI event is a function error",
			body: `{"version":"0","id":"e2e-malformed","detail-type":"EC2 AMI State Change","source":"aws.ec2",` +
				`"account":"123456789012","time":"2024-05-14T09:27:45Z","region":"us-east-1","resources":[],` +
				`"detail":{"State":"available"}}`,
			wantFuncError: true, wantErrorText: "no ImageId", wantLog: "event rejected",
			wantShared: []string{acctA, acctB}, wantTag: "shared", wantMessage: sharedWith2,
		},
		// The same runtime process still serves after function errors.
		{
			name: "CloudTrail DeleteTags revokes everything",
			setup: func(t *testing.T) {
				le.Untag(t, imageID, amitag.Accounts)
			},
			event:    "cloudtrail-delete-tags.json",
			wantKind: "api-call", wantOutcome: "applied", wantStatus: "unshared",
			wantChanges: changes("remove", acctA, acctB),
			wantShared:  nil, wantTag: "unshared", wantMessage: "not shared with any account",
		},
	}

	for i, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			if st.setup != nil {
				st.setup(t)
			}
			body := []byte(st.body)
			var envelopeID string
			if st.event != "" {
				body = readEvent(t, st.event, imageID, st.wantOutcome != "")
				var env struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(body, &env); err != nil {
					t.Fatalf("%s: %v", st.event, err)
				}
				envelopeID = env.ID
			}
			requestID := fmt.Sprintf("e2e-%02d-%s", i+1, strings.ReplaceAll(st.name, " ", "-"))
			before := len(em.out.String())
			status, resp := em.invoke(t, requestID, body)
			logs := em.records(t, requestID)

			var got response
			if err := json.Unmarshal(resp, &got); err != nil {
				t.Fatalf("response is not JSON: %v\n%s", err, resp)
			}
			if st.wantFuncError {
				if got.ErrorMessage == "" || got.ErrorType == "" {
					t.Errorf("response = %s, want a function error with errorMessage and errorType", resp)
				}
				if !strings.Contains(got.ErrorMessage, st.wantErrorText) {
					t.Errorf("errorMessage = %q, want it to contain %q", got.ErrorMessage, st.wantErrorText)
				}
				if got.Kind != "" || len(got.Images) > 0 {
					t.Errorf("response = %s, want only the error", resp)
				}
				// One line tells of the failure: amishare's, with the request
				// id; the runtime library's copy of it is dropped.
				var errorLines []string
				for _, line := range strings.Split(em.out.String()[before:], "\n") {
					if strings.HasPrefix(strings.TrimSpace(line), "{") && strings.Contains(line, st.wantErrorText) {
						errorLines = append(errorLines, line)
					}
				}
				if len(errorLines) != 1 || !strings.Contains(errorLines[0], requestID) || !strings.Contains(errorLines[0], `"level":"ERROR"`) {
					t.Errorf("log lines naming the error = %q, want exactly one ERROR line with request id %s", errorLines, requestID)
				}
			} else {
				if status != http.StatusOK {
					t.Errorf("HTTP status = %d, want 200; body %s", status, resp)
				}
				checkSummary(t, st, got, resp, envelopeID, imageID)
			}
			if st.wantLog != "" && !slices.ContainsFunc(logs, func(r map[string]any) bool { return r["message"] == st.wantLog }) {
				t.Errorf("no %q line logged for request %s", st.wantLog, requestID)
			}
			checkAudit(t, logs, requestID, st.wantChanges)
			if st.wantOutcome != "" {
				checkMetrics(t, logs, st.wantChanges)
			}
			le.WantShared(t, imageID, snaps, st.wantShared...)
			wantStatusTags(t, le.World, imageID, st.wantTag, st.wantMessage)
		})
		if !ok {
			t.Fatalf("step %q failed; the later steps depend on it", st.name)
		}
	}
}

// lambdaEnv is where each end-to-end test starts: the test world (moto
// with the function's configuration parameter in place).
type lambdaEnv struct{ *world.World }

// newLambdaEnv builds the artifacts (once), starts moto and writes config.
func newLambdaEnv(t *testing.T, config string) lambdaEnv {
	t.Helper()
	buildArtifacts(t)
	return lambdaEnv{world.New(t, config)}
}

// start runs the bootstrap under the emulator against moto, as Lambda runs
// it (JSON logs, INFO level), with extra environment variables.
func (le lambdaEnv) start(t *testing.T, extraEnv ...string) *emulator {
	t.Helper()
	env := append(le.Server.Env(),
		"AMISHARE_CONFIG_PARAMETER="+world.Param,
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_LOG_LEVEL=INFO",
		"AWS_LAMBDA_FUNCTION_NAME=amishare",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
	)
	return startEmulator(t, artifacts.rie, artifacts.bootstrap, append(env, extraEnv...))
}

// step is one invocation of TestLambdaUnderEmulator and what it must lead to.
type step struct {
	name  string
	setup func(t *testing.T)
	event string // a file in events/, with the sample image id replaced
	body  string // or this body, verbatim

	// A handled event: the summary's kind, and for one reconciled image its
	// outcome, status and changes (which the audit log must match).
	wantKind    string
	wantIgnored bool
	wantOutcome string
	wantStatus  string
	wantChanges []change
	// A function error, whose errorMessage contains wantErrorText.
	wantFuncError bool
	wantErrorText string
	// A line the function logs for the request, by message.
	wantLog string

	// Afterwards, from the owner's side: who may use the image and each
	// snapshot, and the status tags.
	wantShared  []string
	wantTag     string
	wantMessage string
}

// change is one entry of a result's changes, and of an audit line.
type change struct {
	ImageID    string `json:"imageId"`
	SnapshotID string `json:"snapshotId,omitempty"`
	KeyARN     string `json:"keyArn,omitempty"`
	Account    string `json:"account"`
	Action     string `json:"action"`
}

func (c change) String() string {
	return fmt.Sprintf("%s %s on %s%s%s", c.Action, c.Account, c.ImageID, prefixed("/", c.SnapshotID), prefixed("/", c.KeyARN))
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// response is the invocation's body as a caller sees it: the handler's
// Summary on success, Lambda's error object on a function error. It is
// spelled out here, not borrowed from pkg/handler, so the test pins the JSON.
type response struct {
	EventID    string `json:"eventId"`
	Kind       string `json:"kind"`
	DetailType string `json:"detailType"`
	Ignored    string `json:"ignored"`
	Images     []struct {
		ImageID     string   `json:"imageId"`
		Outcome     string   `json:"outcome"`
		Status      string   `json:"status"`
		Message     string   `json:"message"`
		Targets     []string `json:"targets"`
		Changes     []change `json:"changes"`
		TagsWritten bool     `json:"tagsWritten"`
	} `json:"images"`
	Error string `json:"error"`

	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

func checkSummary(t *testing.T, s step, got response, raw []byte, envelopeID, imageID string) {
	t.Helper()
	if got.ErrorMessage != "" || got.Error != "" {
		t.Fatalf("response = %s, want no error", raw)
	}
	if got.Kind != s.wantKind {
		t.Errorf("kind = %q, want %q", got.Kind, s.wantKind)
	}
	if got.EventID != envelopeID {
		t.Errorf("eventId = %q, want the envelope's %q", got.EventID, envelopeID)
	}
	if s.wantIgnored {
		if got.Ignored == "" || len(got.Images) != 0 {
			t.Errorf("ignored = %q, images = %d; want a reason and no image (%s)", got.Ignored, len(got.Images), raw)
		}
		return
	}
	if got.Ignored != "" {
		t.Errorf("ignored = %q, want the event handled", got.Ignored)
	}
	if len(got.Images) != 1 {
		t.Fatalf("images = %d, want 1 (%s)", len(got.Images), raw)
	}
	img := got.Images[0]
	if s.wantOutcome == "skipped" { // looked at and left alone: no targets, no status
		if img.ImageID != imageID || img.Outcome != s.wantOutcome || img.Status != "" || len(img.Changes) > 0 || img.TagsWritten {
			t.Errorf("image %+v, want %s skipped with no change", img, imageID)
		}
		return
	}
	if img.ImageID != imageID || img.Outcome != s.wantOutcome || img.Status != s.wantStatus {
		t.Errorf("image %s outcome %q status %q, want %s %q %q", img.ImageID, img.Outcome, img.Status, imageID, s.wantOutcome, s.wantStatus)
	}
	if !slices.Equal(img.Targets, s.wantShared) {
		t.Errorf("targets = %v, want %v", img.Targets, s.wantShared)
	}
	if img.Message != s.wantMessage {
		t.Errorf("message = %q, want %q", img.Message, s.wantMessage)
	}
	if got, want := changeSet(img.Changes), changeSet(s.wantChanges); !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	// The status tags are written only when they change, which in these
	// steps is exactly when permissions change.
	wantWritten := len(s.wantChanges) > 0
	if img.TagsWritten != wantWritten {
		t.Errorf("tagsWritten = %v, want %v", img.TagsWritten, wantWritten)
	}
}

// checkAudit wants exactly one "permission changed" line per change, each
// carrying the invocation's request id.
func checkAudit(t *testing.T, logs []map[string]any, requestID string, want []change) {
	t.Helper()
	var got []change
	for _, r := range logs {
		if r["msg"] != nil {
			t.Errorf("log line has msg, want Lambda's message key: %v", r)
		}
		if r["message"] != "permission changed" {
			continue
		}
		if r["level"] != "INFO" || r["timestamp"] == nil {
			t.Errorf("audit line %v: want level INFO and a timestamp", r)
		}
		c := change{ImageID: str(r["imageId"]), SnapshotID: str(r["snapshotId"]), KeyARN: str(r["keyArn"]),
			Account: str(r["account"]), Action: str(r["action"])}
		if c.ImageID == "" || c.Account == "" || c.Action == "" {
			t.Errorf("audit line %v lacks imageId, account or action", r)
		}
		got = append(got, c)
	}
	if g, w := changeSet(got), changeSet(want); !slices.Equal(g, w) {
		t.Errorf("audit lines for request %s = %q, want %q", requestID, g, w)
	}
}

// checkMetrics wants the embedded-metric-format line once per reconciling
// invocation, counting accounts once each, on the image.
func checkMetrics(t *testing.T, logs []map[string]any, changes []change) {
	t.Helper()
	want := map[string]float64{"AccountsAdded": 0, "AccountsRemoved": 0, "TargetsRefused": 0, "Errors": 0}
	for _, c := range changes {
		if c.SnapshotID == "" && c.KeyARN == "" {
			if c.Action == "add" {
				want["AccountsAdded"]++
			} else {
				want["AccountsRemoved"]++
			}
		}
	}
	n := 0
	for _, r := range logs {
		if r["message"] != "metrics" {
			continue
		}
		n++
		if _, ok := r["_aws"].(map[string]any); !ok {
			t.Errorf("metrics line %v has no _aws object", r)
		}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("metric %s = %v, want %v", k, r[k], v)
			}
		}
	}
	if n != 1 {
		t.Errorf("metrics lines = %d, want 1", n)
	}
}

func changeSet(cs []change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	slices.Sort(out)
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// readEvent reads a sample event and puts the test's image id in it.
func readEvent(t *testing.T, name, imageID string, mustMention bool) []byte {
	t.Helper()
	raw := world.SampleEvent(t, name, imageID)
	if mustMention && !bytes.Contains(raw, []byte(imageID)) {
		t.Fatalf("events/%s does not mention %s: the test cannot point it at its image", name, world.SampleImage)
	}
	return raw
}

func wantStatusTags(t *testing.T, w *world.World, imageID, status, message string) {
	t.Helper()
	tags := w.Tags(t, imageID)
	if tags[amitag.Status] != status || tags[amitag.Message] != message {
		t.Errorf("status tags = %q %q, want %q %q", tags[amitag.Status], tags[amitag.Message], status, message)
	}
}

// emulator is a running aws-lambda-rie serving the bootstrap on loopback.
type emulator struct {
	url    string
	cmd    *exec.Cmd
	out    *fixture.LogBuffer // the emulator's and the function's stdout and stderr
	exited chan struct{}
	client *http.Client
}

// startEmulator runs the emulator on two free loopback ports (its invoke
// API and the Runtime API it offers the bootstrap), retrying with fresh
// ports if another process took one first, and stops it when t ends.
func startEmulator(t *testing.T, rie, bootstrap string, env []string) *emulator {
	t.Helper()
	var errs []error
	for range 3 {
		em, err := tryStartEmulator(t, rie, bootstrap, env)
		if err == nil {
			return em
		}
		errs = append(errs, err)
	}
	t.Fatalf("starting the emulator: %v", errors.Join(errs...))
	return nil
}

func tryStartEmulator(t *testing.T, rie, bootstrap string, env []string) (*emulator, error) {
	t.Helper()
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	addr, apiAddr := addrs[0], addrs[1]
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", apiAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that stopping it reaches everything it runs
	// in that group. (The emulator starts the bootstrap in a group of its own
	// and stops it itself on SIGTERM; stop checks that it did.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	endWithTest(cmd.SysProcAttr)
	em := &emulator{url: "http://" + addr + invokePath, cmd: cmd, out: &fixture.LogBuffer{}, exited: make(chan struct{}),
		client: &http.Client{Timeout: invokeTimeout}}
	cmd.Stdout, cmd.Stderr = em.out, em.out
	if err = cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", rie, err)
	}
	go func() {
		cmd.Wait() // the outcome is in cmd.ProcessState
		close(em.exited)
	}()

	deadline := time.Now().Add(emulatorStartTimeout)
	for _, a := range []string{addr, apiAddr} {
		for {
			conn, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-em.exited:
				return nil, fmt.Errorf("emulator ended (%s) before listening on %s; its output:\n%s", cmd.ProcessState, a, em.out)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				em.stop(t)
				return nil, fmt.Errorf("emulator not listening on %s within %s; its output:\n%s", a, emulatorStartTimeout, em.out)
			}
		}
	}
	select {
	case <-em.exited: // a port was taken, and someone else answered
		return nil, fmt.Errorf("emulator ended (%s) right after start; its output:\n%s", cmd.ProcessState, em.out)
	default:
	}
	t.Cleanup(func() {
		em.stop(t)
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", em.out)
		}
	})
	return em, nil
}

// freeAddrs returns n distinct loopback addresses nobody listened on a moment ago.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// stop sends SIGTERM to the emulator's process group, then SIGKILL after
// stopGrace, and checks no bootstrap it started is left running.
func (em *emulator) stop(t *testing.T) {
	t.Helper()
	pgid := em.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stopping the emulator: %v", err)
	}
	select {
	case <-em.exited:
	case <-time.After(stopGrace):
		t.Errorf("emulator still running %s after SIGTERM; killing it", stopGrace)
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("killing the emulator: %v", err)
		}
		<-em.exited
	}
	// The emulator's own group is gone with it; the bootstrap had its own.
	bootstrap := em.cmd.Args[len(em.cmd.Args)-1]
	if real, err := filepath.EvalSymlinks(bootstrap); err == nil {
		bootstrap = real // /proc shows the resolved path
	}
	deadline := time.Now().Add(stopGrace)
	for {
		left := processesRunning(bootstrap)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("bootstrap processes %v outlived the emulator; killing them", left)
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesRunning lists the processes whose executable is path, from /proc
// (empty where there is no /proc).
func processesRunning(path string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == path {
			pids = append(pids, pid)
		}
	}
	return pids
}

// invoke POSTs body as one invocation with the given request id, and returns
// once the emulator has logged the invocation's END line, so that every line
// the function wrote for it is in em.out.
func (em *emulator) invoke(t *testing.T, requestID string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, em.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amzn-RequestId", requestID)
	resp, err := em.client.Do(req)
	if err != nil {
		t.Fatalf("invoking: %v", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	end := "END RequestId: " + requestID
	deadline := time.Now().Add(logTimeout)
	for !strings.Contains(em.out.String(), end) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q line within %s of the response (HTTP %d %s)", end, logTimeout, resp.StatusCode, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return resp.StatusCode, out
}

// records returns the function's JSON log records for one request id.
func (em *emulator) records(t *testing.T, requestID string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(em.out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if !bytes.HasPrefix(line, []byte("{")) {
			continue // the emulator's own lines: START, END, REPORT, its log
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Errorf("function log line is not JSON: %v: %s", err, line)
			continue
		}
		if r["requestId"] == requestID {
			out = append(out, r)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
