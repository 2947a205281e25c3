package main

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

func TestHealthcheckCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx := context.Background()
	if err := run(ctx, []string{"healthcheck", addr}, io.Discard, io.Discard); err != nil {
		t.Fatalf("open port: %v", err)
	}
	ln.Close()
	if err := run(ctx, []string{"healthcheck", addr}, io.Discard, io.Discard); err == nil {
		t.Fatal("closed port: healthy, want an error")
	}
	if err := run(ctx, []string{"healthcheck"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("no target: got %v, want usage", err)
	}
}
