package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HealthcheckCommand is the first argument that makes Main probe a running
// instance instead of starting one: images built FROM scratch have no shell
// or curl, so a container's health check runs the service's own binary
// (`/ingest healthcheck`).
const HealthcheckCommand = "healthcheck"

// HealthcheckTimeout bounds one probe; a container runtime kills slower
// checks anyway, and an answer after that is as bad as none.
const HealthcheckTimeout = 5 * time.Second

// Healthcheck probes target and returns nil when it is healthy:
//
//   - an http:// or https:// URL must answer GET with a 2xx status;
//   - a host:port (or tcp://host:port) must accept a TCP connection, which
//     is what a Kafka broker or a gRPC store offers without a client;
//   - empty means this service's own readiness, GET /readyz on the port of
//     TRIBUTARY_HTTP_ADDR (default :8080) on loopback.
//
// A TLS-serving service names its https URL; certificates are verified as
// usual.
func Healthcheck(ctx context.Context, target string, getenv func(string) string) error {
	if target == "" {
		addr := getenv(EnvName("http-addr"))
		if addr == "" {
			addr = ":8080"
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("healthcheck: %s=%q: %w", EnvName("http-addr"), addr, err)
		}
		target = "http://" + net.JoinHostPort("127.0.0.1", port) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, HealthcheckTimeout)
	defer cancel()
	if hostport, ok := strings.CutPrefix(target, "tcp://"); ok || !strings.Contains(target, "://") {
		if !ok {
			hostport = target
		}
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			return fmt.Errorf("healthcheck: %q is neither an http(s) URL nor host:port", target)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", hostport)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		return c.Close()
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("healthcheck: %q is neither an http(s) URL nor host:port", target)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("healthcheck: %s: %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// runHealthcheck is the healthcheck mode's command line: at most one
// target argument.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) > 1 {
		return fmt.Errorf("usage: %s [URL | host:port]", HealthcheckCommand)
	}
	target := ""
	if len(args) == 1 {
		target = args[0]
	}
	return Healthcheck(ctx, target, getenv)
}
