// Package daemontest tests a service's main through its run function
// (daemon.RunFunc): tables of settings it must refuse, and the service
// started in the background until it is ready, then stopped as SIGTERM
// would stop it.
//
//	func TestRunServes(t *testing.T) {
//		cluster := kafkatest.Start(t)
//		addr := daemontest.FreeAddr(t)
//		svc := daemontest.Start(t, run, map[string]string{
//			"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
//			"TRIBUTARY_HTTP_ADDR":     addr,
//		})
//		svc.WaitReady(t, addr, 30*time.Second)
//		...
//		svc.Stop(t, 30*time.Second)
//		daemontest.CheckLogs(t, svc.Logs.String(), "ingest")
//	}
package daemontest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

// Buffer keeps what is written to it. It is safe for concurrent use, so a
// service can log into it while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Tail returns the last n bytes written (all of them when fewer), for
// failure reports that should not drown the test's output.
func (b *Buffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.b.Bytes()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return string(s)
}

// Env returns a getenv over the variables of layers, a later layer
// replacing an earlier one's value. A layer that sets a variable to ""
// unsets it, as an empty variable counts as unset for daemon.ParseFlags.
func Env(layers ...map[string]string) func(string) string {
	merged := map[string]string{}
	for _, l := range layers {
		for k, v := range l {
			merged[k] = v
		}
	}
	return func(k string) string { return merged[k] }
}

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// service's TRIBUTARY_HTTP_ADDR.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BadConfig is a configuration run must refuse.
type BadConfig struct {
	Name string
	// Args are the command-line flags.
	Args []string
	// Env is laid over the table's base environment (see Env).
	Env map[string]string
	// Want are strings the error must contain, such as the names of the
	// variables at fault.
	Want []string
}

// refuseTimeout bounds a run that wrongly accepts its configuration and
// starts, so that the case fails instead of hanging.
const refuseTimeout = time.Minute

// RejectsConfig runs run once per case, each a subtest, with the case's
// flags and environment laid over base, and fails the case unless run
// returns an error containing every string of Want. Refusing is expected
// before the service dials anything, so run gets a context that ends only
// after a minute.
func RejectsConfig(t *testing.T, run daemon.RunFunc, base map[string]string, cases []BadConfig) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) { rejects(t, run, base, tt) })
	}
}

func rejects(t testing.TB, run daemon.RunFunc, base map[string]string, tt BadConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), refuseTimeout)
	defer cancel()
	var stderr Buffer
	err := run(ctx, tt.Args, Env(base, tt.Env), &stderr)
	if err == nil {
		t.Errorf("run(%q) = nil, want an error naming %q\nstderr:\n%s", tt.Args, tt.Want, stderr.String())
		return
	}
	for _, w := range tt.Want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("run(%q) = %v, want an error naming %s", tt.Args, err, w)
		}
	}
}

// Service is a run function running in the background.
type Service struct {
	// Logs is what the service writes to stderr.
	Logs *Buffer

	cancel context.CancelFunc
	done   chan error
	// The fields below belong to the test's goroutine. returned and err
	// are run's outcome once it has returned.
	stopped  bool
	returned bool
	err      error
}

// Start runs run in the background with no flags and env as its
// environment. The service runs until Stop, or until the test ends, when it
// is stopped as by Stop with 30 seconds to drain; then, if the test has
// failed, its logs are shown.
func Start(t testing.TB, run daemon.RunFunc, env map[string]string) *Service {
	t.Helper()
	// Not t.Context: that ends before the cleanups run, and the service
	// must stop through Stop, which checks how it stopped.
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{Logs: &Buffer{}, cancel: cancel, done: make(chan error, 1)}
	getenv := Env(env)
	go func() { s.done <- run(ctx, nil, getenv, s.Logs) }()
	t.Cleanup(func() {
		if !s.stopped {
			s.Stop(t, 30*time.Second)
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", s.Logs.String())
		}
	})
	return s
}

// exited reports whether run has returned, without waiting.
func (s *Service) exited() bool {
	if s.returned {
		return true
	}
	select {
	case s.err = <-s.done:
		s.returned = true
	default:
	}
	return s.returned
}

// WaitFor polls ok until it reports true. It fails the test at once if the
// service returns first, and after timeout otherwise; what names the
// awaited condition in those failures.
func (s *Service) WaitFor(t testing.TB, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if s.exited() {
			t.Fatalf("run returned before %s: %v", what, s.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitReady waits until GET http://addr/readyz answers 200, as WaitFor
// does.
func (s *Service) WaitReady(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	s.WaitFor(t, "/readyz 200 from "+addr, timeout, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Stop cancels the service's context, as SIGTERM does in daemon.Main, and
// waits up to timeout for run to return. The test fails unless run returns
// nil in time.
func (s *Service) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	s.stopped = true
	s.cancel()
	if !s.returned {
		select {
		case s.err = <-s.done:
			s.returned = true
		case <-time.After(timeout):
			t.Errorf("run did not return within %v of the stop", timeout)
			return
		}
	}
	if s.err != nil {
		t.Errorf("run = %v, want nil after a stop", s.err)
	}
}

// CheckLogs fails the test unless logs holds at least one line and every
// line is a JSON object whose "service" is service: the shape
// daemon.NewLogger gives.
func CheckLogs(t testing.TB, logs, service string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(logs, "\n"), "\n")
	if logs == "" {
		lines = nil
	}
	if len(lines) == 0 {
		t.Errorf("no log lines, want JSON records of service %s", service)
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["service"] != service {
			t.Errorf("log line %q is not a JSON record of service %s", line, service)
		}
	}
}
