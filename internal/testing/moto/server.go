// Package moto is test tooling that runs moto, the AWS service mock,
// on loopback with the patches in launcher.py that make it behave as AWS
// documents where amishare depends on it: RegisterImage honours
// BlockDeviceMappings, snapshots keep their volume's KMS key, AWS managed
// keys report KeyManager AWS, unknown image ids are 400 InvalidAMIID.*
// instead of 500, ModifySnapshotAttribute accepts CreateVolumePermission,
// Get/PutKeyPolicy default PolicyName, KMS calls on another account's key are
// AccessDeniedException, the block public access states of AMIs and
// snapshots exist, (on request, SetDelegatedKeysOnly) key writes are
// refused on keys not tagged amishare:managed=true, as amishare's role does,
// CopyImage copies the source's snapshots (re-encrypted as asked) and
// honours ClientToken and tags, ResetImageAttribute removes every launch
// permission, DisableImage and EnableImage exist (and DescribeImages leaves
// disabled images out unless asked), and DeleteTags without tags deletes
// every tag.
//
// It needs python3 with moto 5.2.1 (pinned in requirements.txt; `make pytools`
// installs it into .venv when the machine lacks it). AMISHARE_MOTO_PYTHON
// names the interpreter (the Makefile sets it); the default is python3 on PATH.
package moto

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

//go:embed launcher.py
var launcher []byte

// AccountID is moto's default account: every resource the server creates is
// owned by it, and ARNs it returns (KMS keys, IAM root) carry it.
const AccountID = "123456789012"

// Region is the region Env and AWSConfig point the SDK at.
const Region = "us-east-1"

// InstallHint says how to get what Start needs.
const InstallHint = "run `make pytools` (installs moto 5.2.1 into .venv), or pip install 'moto[server]==5.2.1'"

const (
	// startTimeout bounds the wait for the READY line; importing moto and
	// its botocore models takes about a second on a warm machine.
	startTimeout = 60 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before killing.
	stopGrace = 5 * time.Second
)

// Server is a running patched moto on 127.0.0.1.
type Server struct {
	// Endpoint is the server's base URL, e.g. http://127.0.0.1:PORT.
	Endpoint string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	dir    string
	output *tail
	exited chan struct{} // closed when the process has been waited for

	stopOnce sync.Once
	stopErr  error
}

// Start writes the embedded launcher to a temporary directory, runs
// `python3 launcher.py --host 127.0.0.1 --port 0 --watch-stdin`, and returns
// once the launcher prints its READY line (or fails after 60 s). The process
// reads its stdin until end of file, so it also ends when the calling process
// dies without calling Stop.
func Start() (*Server, error) {
	python := os.Getenv("AMISHARE_MOTO_PYTHON")
	if python == "" {
		python = "python3"
	}
	if _, err := exec.LookPath(python); err != nil {
		return nil, fmt.Errorf("starting moto: %w; python3 with moto is needed, %s", err, InstallHint)
	}
	dir, err := os.MkdirTemp("", "moto-")
	if err != nil {
		return nil, fmt.Errorf("starting moto: %w", err)
	}
	script := filepath.Join(dir, "launcher.py")
	if err := os.WriteFile(script, launcher, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting moto: writing launcher: %w", err)
	}

	cmd := exec.Command(python, script, "--host", "127.0.0.1", "--port", "0", "--watch-stdin")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	s := &Server{cmd: cmd, dir: dir, output: newTail(64 << 10), exited: make(chan struct{})}
	cmd.Stderr = s.output
	ready := make(chan string, 1)
	cmd.Stdout = &readyWriter{out: s.output, ready: ready}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting moto: %w", err)
	}
	s.stdin = stdin
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting moto with %s: %w", python, err)
	}
	go func() {
		cmd.Wait() // its outcome is in cmd.ProcessState
		close(s.exited)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case endpoint := <-ready:
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
			s.Stop()
			return nil, fmt.Errorf("starting moto: launcher announced %q, want http://127.0.0.1:PORT", endpoint)
		}
		s.Endpoint = endpoint
		// Python has compiled the script by now; nothing else needs the file.
		os.RemoveAll(dir)
		return s, nil
	case <-s.exited:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting moto: launcher ended before it was ready (%s); %s; its output:\n%s",
			cmd.ProcessState, InstallHint, s.output)
	case <-timer.C:
		s.Stop()
		return nil, fmt.Errorf("starting moto: no READY line within %s; its output:\n%s", startTimeout, s.output)
	}
}

// Stop terminates the process (SIGTERM, then SIGKILL after a few seconds)
// and removes the temporary directory. Calling it again does nothing.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop()
	})
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("stopping moto: %w", err))
	}
	select {
	case <-s.exited:
	case <-time.After(stopGrace):
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("killing moto: %w", err))
		}
		<-s.exited
	}
	s.stdin.Close()
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", s.dir, err))
	}
	return errors.Join(errs...)
}

// Reset clears all moto state: every backend of every service, account and
// region. The patches stay in place.
func (s *Server) Reset() error {
	return s.control("resetting moto", "/moto-api/reset", "application/json", nil)
}

// control POSTs to one of the server's control endpoints (moto's own, or
// the launcher's /amishare-test/...), wanting 200.
func (s *Server) control(what, path, contentType string, body io.Reader) error {
	resp, err := http.Post(s.Endpoint+path, contentType, body)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", what, resp.Status, bytes.TrimSpace(out))
	}
	return nil
}

// SetDelegatedKeysOnly makes the server refuse, with AccessDeniedException,
// PutKeyPolicy, CreateGrant and RevokeGrant on keys not tagged
// amishare:managed=true, as amishare's role does with the stack parameter
// DelegatedKeysOnly=true (moto enforces no IAM). Reset turns it off again.
func (s *Server) SetDelegatedKeysOnly(on bool) error {
	return s.Switch("delegated-keys-only", on)
}

// Switch turns one of the launcher's test switches on or off (see the
// patches in launcher.py: delegated-keys-only, reset-keeps-organizations).
// Reset turns every switch off.
func (s *Server) Switch(name string, on bool) error {
	return s.control("setting "+name, "/amishare-test/"+name, "text/plain", strings.NewReader(fmt.Sprint(on)))
}

// Env returns the environment, as "K=V" strings, that points the AWS SDK
// default chain (Go, Python, the CLI) at this server with static test
// credentials. Shared config files and IMDS are switched off so nothing on
// the machine leaks in. Append it after os.Environ(): for exec.Cmd the last
// value of a key wins.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		// A CA bundle or a per-service endpoint set on the machine would
		// override the above (the SDK ignores empty values).
		"AWS_CA_BUNDLE=",
		"AWS_ENDPOINT_URL_EC2=",
		"AWS_ENDPOINT_URL_KMS=",
		"AWS_ENDPOINT_URL_SSM=",
		"AWS_ENDPOINT_URL_SQS=",
		"AWS_ENDPOINT_URL_DYNAMODB=",
		"AWS_ENDPOINT_URL_STS=",
	}
}

// SetEnv sets Env for the rest of test t (t.Setenv), so that clients built
// from the SDK's default chain, like the real handler's, talk to this server.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// AWSConfig returns an aws.Config for this server: static credentials,
// region us-east-1 and BaseEndpoint = Endpoint. It is built directly rather
// than with config.LoadDefaultConfig so that no environment variable or
// shared config file (profiles, per-service endpoints) can redirect it; ctx
// is there for symmetry with LoadDefaultConfig.
func (s *Server) AWSConfig(ctx context.Context) (aws.Config, error) {
	if err := ctx.Err(); err != nil {
		return aws.Config{}, fmt.Errorf("building config for moto: %w", err)
	}
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		BaseEndpoint: aws.String(s.Endpoint),
	}, nil
}

var shared struct {
	once   sync.Once
	server *Server
	err    error
}

// ForTest returns a moto server for t, with all state reset, and resets it
// again when t ends. One server is shared by the whole test binary (starting
// one costs about a second) and ends with it. Because state is shared and
// reset, tests that use ForTest must not run in parallel with each other.
// If the server cannot start, ForTest fails t.
func ForTest(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		shared.server, shared.err = Start()
	})
	if shared.err != nil {
		t.Fatalf("moto: %v", shared.err)
	}
	s := shared.server
	if err := s.Reset(); err != nil {
		t.Fatalf("moto: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Reset(); err != nil {
			t.Errorf("moto: %v", err)
		}
	})
	return s
}

// readyWriter receives the launcher's stdout: it hands the endpoint of the
// first "READY <url>" line to ready and keeps everything else in out.
type readyWriter struct {
	out     io.Writer
	ready   chan<- string
	partial []byte
	sent    bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	if w.sent {
		return w.out.Write(p)
	}
	w.partial = append(w.partial, p...)
	for !w.sent {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
		if endpoint, ok := strings.CutPrefix(line, "READY "); ok {
			w.ready <- strings.TrimSpace(endpoint)
			w.sent = true
		} else {
			fmt.Fprintln(w.out, line)
		}
	}
	if w.sent && len(w.partial) > 0 {
		w.out.Write(w.partial)
		w.partial = nil
	}
	return len(p), nil
}

// tail keeps the last max bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
