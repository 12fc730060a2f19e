// Package throttle is test tooling: a reverse proxy on loopback in front of
// the emulator that throttles EC2 as EC2 does, with a token bucket per API
// action for the account and region (EC2's "request rate limiting"). A
// request that finds its action's bucket empty is answered
// RequestLimitExceeded and never reaches the emulator; any other passes and
// takes a token. Buckets start full and refill continuously. The proxy is
// on the emulator's side of the wire, where EC2 measures: every client of
// every process pointed at it (AWS_ENDPOINT_URL) shares its buckets, as a
// burst, a sweep and the CLI share the account's.
package throttle

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/internal/testing/fixture"
)

// Bucket is the token bucket of one API action.
type Bucket struct {
	// Capacity is how many tokens the bucket holds: the burst it allows.
	Capacity float64
	// Refill is how many tokens it gains per second.
	Refill float64
}

// Mutating reports whether an EC2 action is one EC2 counts as mutating:
// every action but the non-mutating Describe*, Get* and List*.
func Mutating(action string) bool {
	for _, p := range []string{"Describe", "Get", "List"} {
		if strings.HasPrefix(action, p) {
			return false
		}
	}
	return action != ""
}

// Proxy throttles the EC2 actions it is told to, each with its own Bucket.
type Proxy struct {
	// Endpoint is the proxy's base URL: point AWS_ENDPOINT_URL at it.
	Endpoint string

	bucket    Bucket
	throttles func(action string) bool
	srv       *http.Server

	mu        sync.Mutex
	tokens    map[string]float64
	refilled  map[string]time.Time
	passed    map[string]int
	throttled map[string]int
}

// Start starts a proxy to target (the emulator's endpoint) that throttles
// the EC2 actions for which throttles is true (Mutating, say), each with a
// bucket like b. Every other request, and requests of other services,
// pass untouched.
func Start(target string, b Bucket, throttles func(action string) bool) (*Proxy, error) {
	p := &Proxy{bucket: b, throttles: throttles, tokens: map[string]float64{}, refilled: map[string]time.Time{},
		passed: map[string]int{}, throttled: map[string]int{}}
	var err error
	p.Endpoint, p.srv, err = fixture.StartProxy(target, func(w http.ResponseWriter, req *http.Request, forward http.Handler) {
		action, protocol, err := faultinject.Action(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if protocol == faultinject.ProtocolQuery && p.throttles(action) && !p.take(action) {
			write(w, faultinject.Fault(req, protocol, action, faultinject.Throttle))
			return
		}
		forward.ServeHTTP(w, req)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// take reports whether action's bucket holds a token, and takes it.
func (p *Proxy) take(action string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	tokens, seen := p.tokens[action]
	if !seen {
		tokens = p.bucket.Capacity
	} else {
		tokens = min(p.bucket.Capacity, tokens+now.Sub(p.refilled[action]).Seconds()*p.bucket.Refill)
	}
	p.refilled[action] = now
	if tokens < 1 {
		p.tokens[action] = tokens
		p.throttled[action]++
		return false
	}
	p.tokens[action] = tokens - 1
	p.passed[action]++
	return true
}

func write(w http.ResponseWriter, resp *http.Response) {
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	resp.Body.Close()
}

// Count is what the proxy did with the requests of one throttled action.
type Count struct {
	Action    string
	Passed    int // took a token and reached the emulator
	Throttled int // answered RequestLimitExceeded
}

// Counts returns the throttled actions' counts, sorted by action.
func (p *Proxy) Counts() []Count {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Count
	for a := range p.tokens {
		out = append(out, Count{Action: a, Passed: p.passed[a], Throttled: p.throttled[a]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Action < out[j].Action })
	return out
}

// Throttled returns how many requests the proxy answered RequestLimitExceeded.
func (p *Proxy) Throttled() int {
	n := 0
	for _, c := range p.Counts() {
		n += c.Throttled
	}
	return n
}

// BoundTime is the least time the requests that passed could have taken
// through the buckets, starting full: for each action (passed - Capacity) /
// Refill, the longest of them. No client, however it schedules its calls,
// gets them through faster.
func (p *Proxy) BoundTime() time.Duration {
	var bound time.Duration
	for _, c := range p.Counts() {
		if over := float64(c.Passed) - p.bucket.Capacity; over > 0 {
			bound = max(bound, time.Duration(over/p.bucket.Refill*float64(time.Second)))
		}
	}
	return bound
}

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }
