package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tributary-rag/tributary/pkg/docparse"
)

// childArgsEnv, when set, makes the test binary run `tributary` with these
// arguments (separated by newlines) instead of the tests: tests start it as a
// child process to kill it.
const childArgsEnv = "TRIBUTARY_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if code, ok := docparse.RunChild(); ok {
		os.Exit(code)
	}
	if args := os.Getenv(childArgsEnv); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := run(ctx, strings.Split(args, "\n"), os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		want    []string
		wantKey string
		wantErr error
	}{
		{args: nil},
		{args: []string{"a", "b"}, want: []string{"a", "b"}},
		{args: []string{"a", "--key", "k", "b"}, want: []string{"a", "b"}, wantKey: "k"},
		{args: []string{"--key=k", "a"}, want: []string{"a"}, wantKey: "k"},
		{args: []string{"a", "--", "--key", "k"}, want: []string{"a", "--key", "k"}},
		{args: []string{"a", "-h"}, wantErr: flag.ErrHelp},
	}
	for _, tt := range tests {
		fset := flag.NewFlagSet("test", flag.ContinueOnError)
		fset.SetOutput(io.Discard)
		key := fset.String("key", "", "")
		got, err := parseInterspersed(fset, tt.args)
		if !slices.Equal(got, tt.want) || *key != tt.wantKey || !errors.Is(err, tt.wantErr) {
			t.Errorf("parseInterspersed(%q) = %q (key %q), %v, want %q (key %q), %v", tt.args, got, *key, err, tt.want, tt.wantKey, tt.wantErr)
		}
	}
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	if _, err := parseInterspersed(fset, []string{"a", "--nope"}); err == nil || errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseInterspersed with an unknown flag = %v, want a parse error", err)
	}
}
