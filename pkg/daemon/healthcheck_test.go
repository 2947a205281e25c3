package daemon

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready {
			http.Error(w, `{"status":"not ready"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ready"}`))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	env := func(k string) string {
		if k == "TRIBUTARY_HTTP_ADDR" {
			return "0.0.0.0:" + port
		}
		return ""
	}
	ctx := context.Background()

	// The default target is the service's own /readyz on loopback.
	if err := runHealthcheck(ctx, nil, env); err != nil {
		t.Fatalf("ready service: %v", err)
	}
	if err := runHealthcheck(ctx, []string{srv.URL + "/readyz"}, env); err != nil {
		t.Fatalf("explicit URL: %v", err)
	}
	ready = false
	err := runHealthcheck(ctx, nil, env)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unready service: got %v, want a 503 error", err)
	}

	// host:port and tcp:// probe a listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	for _, target := range []string{addr, "tcp://" + addr} {
		if err := Healthcheck(ctx, target, env); err != nil {
			t.Errorf("listener %s: %v", target, err)
		}
	}
	ln.Close()
	if err := Healthcheck(ctx, addr, env); err == nil {
		t.Errorf("closed port %s: healthy, want an error", addr)
	}

	for _, bad := range [][]string{{"ftp://x/y"}, {"no-port"}, {"http://"}, {"a", "b"}} {
		if err := runHealthcheck(ctx, bad, env); err == nil {
			t.Errorf("target %q: healthy, want an error", bad)
		}
	}
	badEnv := func(string) string { return "nonsense" }
	if err := runHealthcheck(ctx, nil, badEnv); err == nil {
		t.Error("bad TRIBUTARY_HTTP_ADDR: healthy, want an error")
	}
}
