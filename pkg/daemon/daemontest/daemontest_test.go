package daemontest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

// recorder stands in for the testing.TB of a helper under test, so that a
// test can check that the helper fails when it should. Fatal ends only the
// goroutine that call runs in.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	msgs     []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.Errorf("%s", fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs) > 0
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// call runs f with r as its TB in a goroutine of its own, so that a Fatal
// stops f and not the test, and returns what f reported.
func (r *recorder) call(f func(tb testing.TB)) []string {
	r.mu.Lock()
	r.msgs = nil
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs
}

func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestEnv(t *testing.T) {
	getenv := Env(
		map[string]string{"A": "base", "B": "base", "C": "base"},
		map[string]string{"B": "over", "C": ""},
	)
	for k, want := range map[string]string{"A": "base", "B": "over", "C": "", "D": ""} {
		if got := getenv(k); got != want {
			t.Errorf("getenv(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprint(&b, "x")
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 400 {
		t.Errorf("len(String()) = %d, want 400", got)
	}
	fmt.Fprint(&b, "yz")
	if got := b.Tail(3); got != "xyz" {
		t.Errorf("Tail(3) = %q, want %q", got, "xyz")
	}
	if got := b.Tail(1000); len(got) != 402 {
		t.Errorf("len(Tail(1000)) = %d, want 402", len(got))
	}
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr %s: %v", addr, err)
	}
	ln.Close()
}

// refusing is a run that refuses chunk-size below 1, as a service's run
// refuses a bad setting.
func refusing(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := daemon.NewFlagSet("svc", stderr)
	size := fs.Int("chunk-size", 1, "")
	if err := daemon.ParseFlags(fs, args, getenv); err != nil {
		return err
	}
	var p daemon.Problems
	if *size < 1 {
		p.Addf("chunk-size", "must be positive")
	}
	return p.Err()
}

func TestRejectsConfig(t *testing.T) {
	RejectsConfig(t, refusing, map[string]string{"TRIBUTARY_CHUNK_SIZE": "0"}, []BadConfig{
		{Name: "base environment", Want: []string{"TRIBUTARY_CHUNK_SIZE", "must be positive"}},
		{Name: "flag", Args: []string{"--chunk-size", "-1"}, Env: map[string]string{"TRIBUTARY_CHUNK_SIZE": ""}, Want: []string{"--chunk-size"}},
	})
	r := &recorder{TB: t}
	tests := []struct {
		name     string
		c        BadConfig
		wantFail bool
	}{
		{"refused, error names all", BadConfig{Env: map[string]string{"TRIBUTARY_CHUNK_SIZE": "0"}, Want: []string{"CHUNK_SIZE", "positive"}}, false},
		{"accepted", BadConfig{Env: map[string]string{"TRIBUTARY_CHUNK_SIZE": "5"}, Want: []string{"CHUNK_SIZE"}}, true},
		{"refused, error misses one", BadConfig{Args: []string{"--chunk-size=0"}, Want: []string{"CHUNK_SIZE", "TRIBUTARY_OTHER"}}, true},
	}
	for _, tt := range tests {
		msgs := r.call(func(tb testing.TB) { rejects(tb, refusing, nil, tt.c) })
		if failed := len(msgs) > 0; failed != tt.wantFail {
			t.Errorf("%s: failed %v (%q), want %v", tt.name, failed, msgs, tt.wantFail)
		}
	}
}

// serving is a run that serves the daemon's endpoints on
// TRIBUTARY_HTTP_ADDR until ctx ends, as a service's run does; with
// TRIBUTARY_MODE it misbehaves instead.
func serving(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	logger := daemon.NewLogger(stderr, slog.LevelInfo, "svc")
	switch getenv("TRIBUTARY_MODE") {
	case "fail-start":
		return errors.New("open store: disk full")
	case "fail-stop":
		<-ctx.Done()
		return errors.New("flush: broken pipe")
	case "hang":
		<-ctx.Done()
		time.Sleep(2 * time.Second)
		return nil
	case "plain-logs":
		fmt.Fprintln(stderr, "not json")
	}
	// Not ready for the first half second, as a service waiting for its
	// broker.
	start := time.Now()
	warm := daemon.Check{Name: "warm", Run: func(context.Context) error {
		if time.Since(start) < 500*time.Millisecond {
			return errors.New("warming up")
		}
		return nil
	}}
	var g daemon.Group
	g.AddHTTP(daemon.NewHTTPServer(getenv("TRIBUTARY_HTTP_ADDR"), daemon.NewHTTPHandler(nil, nil, warm)), nil, time.Second)
	return g.Run(ctx, logger)
}

func TestServiceStartsAndStops(t *testing.T) {
	addr := FreeAddr(t)
	svc := Start(t, serving, map[string]string{"TRIBUTARY_HTTP_ADDR": addr})
	svc.WaitReady(t, addr, 10*time.Second)
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("/readyz after WaitReady: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after WaitReady = %d, want 200", resp.StatusCode)
	}
	svc.Stop(t, 10*time.Second)
	if _, err := http.Get("http://" + addr + "/readyz"); err == nil {
		t.Error("service still serving after Stop")
	}
	CheckLogs(t, svc.Logs.String(), "svc")
	if !strings.Contains(svc.Logs.String(), `"msg":"stopped"`) {
		t.Errorf("logs %q lack the group's stop", svc.Logs.String())
	}
}

func TestServiceFailures(t *testing.T) {
	tests := []struct {
		name, mode string
		// check drives the service; it reports through tb.
		check    func(tb testing.TB, svc *Service, addr string)
		wantFail string // in what the helpers report
	}{
		{"returns before ready", "fail-start", func(tb testing.TB, svc *Service, addr string) {
			svc.WaitReady(tb, addr, 10*time.Second)
		}, "disk full"},
		{"fails on stop", "fail-stop", func(tb testing.TB, svc *Service, addr string) {
			svc.Stop(tb, 10*time.Second)
		}, "broken pipe"},
		{"does not stop", "hang", func(tb testing.TB, svc *Service, addr string) {
			svc.Stop(tb, 100*time.Millisecond)
		}, "did not return"},
		{"condition never met", "ok", func(tb testing.TB, svc *Service, addr string) {
			svc.WaitFor(tb, "the impossible", 200*time.Millisecond, func() bool { return false })
		}, "no the impossible after"},
		{"plain log line", "plain-logs", func(tb testing.TB, svc *Service, addr string) {
			svc.WaitReady(tb, addr, 10*time.Second)
			svc.Stop(tb, 10*time.Second)
			CheckLogs(tb, svc.Logs.String(), "svc")
		}, `"not json"`},
		{"logs of another service", "ok", func(tb testing.TB, svc *Service, addr string) {
			svc.WaitReady(tb, addr, 10*time.Second)
			svc.Stop(tb, 10*time.Second)
			CheckLogs(tb, svc.Logs.String(), "other")
		}, "service other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			addr := FreeAddr(t)
			var svc *Service
			msgs := r.call(func(tb testing.TB) {
				svc = Start(tb, serving, map[string]string{"TRIBUTARY_HTTP_ADDR": addr, "TRIBUTARY_MODE": tt.mode})
				tt.check(tb, svc, addr)
			})
			if !strings.Contains(strings.Join(msgs, "\n"), tt.wantFail) {
				t.Errorf("reported %q, want a failure mentioning %q", msgs, tt.wantFail)
			}
			// Start's cleanup stops what the check left running.
			r.call(func(testing.TB) { r.cleanup() })
		})
	}
}

func TestCheckLogs(t *testing.T) {
	r := &recorder{TB: t}
	good := `{"level":"INFO","msg":"started","service":"svc"}` + "\n" + `{"msg":"stopped","service":"svc"}` + "\n"
	tests := []struct {
		name, logs string
		wantFail   bool
	}{
		{"JSON records of the service", good, false},
		{"no lines", "", true},
		{"a plain line", good + "panic: boom\n", true},
		{"another service", `{"msg":"started","service":"other"}` + "\n", true},
	}
	for _, tt := range tests {
		msgs := r.call(func(tb testing.TB) { CheckLogs(tb, tt.logs, "svc") })
		if failed := len(msgs) > 0; failed != tt.wantFail {
			t.Errorf("%s: failed %v (%q), want %v", tt.name, failed, msgs, tt.wantFail)
		}
	}
}
