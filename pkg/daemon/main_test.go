package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

// helperEnv makes TestMainHelper act as a service's main in a child
// process; its value picks what the service's run does.
const helperEnv = "TRIBUTARY_DAEMON_MAIN_HELPER"

// TestMainHelper is not a test of its own: TestMainExits runs the test
// binary again with helperEnv set, and then this is the process's main.
func TestMainHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("child process of TestMainExits")
	}
	os.Exit(daemon.Main("svc", func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
		switch mode {
		case "ok":
			return nil
		case "fail":
			return fmt.Errorf("open store: %w", errors.New("disk full"))
		case "help":
			return daemon.NewFlagSet("svc", stderr).Parse([]string{"-h"})
		case "env":
			fmt.Fprintf(stderr, "args=%q env=%s\n", args, getenv(helperEnv))
			return nil
		case "signal":
			fmt.Fprintln(stderr, "waiting")
			select {
			case <-ctx.Done():
				fmt.Fprintln(stderr, "context done")
				return nil
			case <-time.After(20 * time.Second):
				return errors.New("no signal reached the context")
			}
		}
		return fmt.Errorf("unknown mode %q", mode)
	}))
}

func helperCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	t.Fatalf("child did not exit normally: %v", err)
	return -1
}

func TestMainExits(t *testing.T) {
	tests := []struct {
		mode       string
		wantCode   int
		wantStderr func(string) bool
		desc       string
	}{
		{"ok", 0, func(s string) bool { return s == "" }, "nothing"},
		{"fail", 1, func(s string) bool { return s == "svc: open store: disk full\n" }, `"svc: open store: disk full\n"`},
		{"help", 0, func(s string) bool {
			return strings.HasPrefix(s, "Usage of svc:") && !strings.Contains(s, "help requested")
		}, "the usage alone"},
		{"env", 0, func(s string) bool {
			return s == "args=[\"-test.run=^TestMainHelper$\"] env=env\n"
		}, "the process's arguments and environment"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := helperCmd(tt.mode)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			code := exitCode(t, cmd.Run())
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !tt.wantStderr(stderr.String()) {
				t.Errorf("stderr %q, want %s", stderr.String(), tt.desc)
			}
		})
	}
}

// TestMainSignal checks that SIGTERM ends run's context, so the service
// drains and exits 0 instead of being killed.
func TestMainSignal(t *testing.T) {
	cmd := helperCmd("signal")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(pipe)
	if !lines.Scan() || lines.Text() != "waiting" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("first line %q, want waiting", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	if code := exitCode(t, cmd.Wait()); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0 (stderr %q)", code, rest)
	}
	if strings.Join(rest, "\n") != "context done" {
		t.Errorf("stderr after SIGTERM %q, want \"context done\"", rest)
	}
}

func TestNewFlagSet(t *testing.T) {
	var out bytes.Buffer
	fs := daemon.NewFlagSet("svc", &out)
	fs.Int("chunk-size", 1, "largest chunk")
	err := fs.Parse([]string{"--nope"})
	if err == nil || fs.Name() != "svc" {
		t.Fatalf("Parse(--nope) = %v on flag set %q, want an error on svc", err, fs.Name())
	}
	if !strings.Contains(out.String(), "flag provided but not defined: -nope") || !strings.Contains(out.String(), "-chunk-size") {
		t.Errorf("output %q, want the error and the usage", out.String())
	}
}

func TestNewHTTPServer(t *testing.T) {
	h := http.NotFoundHandler()
	srv := daemon.NewHTTPServer("127.0.0.1:0", h)
	if srv.Addr != "127.0.0.1:0" || srv.Handler == nil {
		t.Errorf("server on %q with handler %v, want the given ones", srv.Addr, srv.Handler)
	}
	if srv.ReadHeaderTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("ReadHeaderTimeout %v, IdleTimeout %v, want both set", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	// Uploads, exports and WebSockets stream: whole-request timeouts would
	// cut them off.
	if srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Errorf("ReadTimeout %v, WriteTimeout %v, want none", srv.ReadTimeout, srv.WriteTimeout)
	}
}
