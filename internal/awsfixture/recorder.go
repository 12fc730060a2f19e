package awsfixture

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/amishare/amishare/internal/faultinject"
)

// Recorder is a reverse proxy on loopback in front of the emulator that
// notes when each request arrives and which operation it calls: the
// emulator's side of the wire, where a rate limit is measured.
type Recorder struct {
	// Endpoint is the proxy's base URL: point AWS_ENDPOINT_URL at it.
	Endpoint string

	srv  *http.Server
	mu   sync.Mutex
	hits []Hit
}

// Hit is one request as the emulator's side saw it.
type Hit struct {
	At     time.Time
	Action string
}

// NewRecorder starts a recording proxy to target (the emulator's endpoint).
func NewRecorder(target string) (*Recorder, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Recorder{Endpoint: "http://" + ln.Addr().String()}
	proxy := httputil.NewSingleHostReverseProxy(u)
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		action, _, _ := faultinject.Action(req)
		r.mu.Lock()
		r.hits = append(r.hits, Hit{At: at, Action: action})
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	})}
	go r.srv.Serve(ln) // returns http.ErrServerClosed on Close
	return r, nil
}

// Hits returns the requests seen so far, in arrival order.
func (r *Recorder) Hits() []Hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Hit(nil), r.hits...)
}

// MaxInWindow returns the most requests that arrived within any window of
// length d (a window [t, t+d) starting at any request).
func MaxInWindow(hits []Hit, d time.Duration) int {
	best, j := 0, 0
	for i := range hits {
		for hits[i].At.Sub(hits[j].At) >= d {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Close stops the proxy.
func (r *Recorder) Close() error { return r.srv.Close() }
