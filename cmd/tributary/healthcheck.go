package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

// runHealthcheck probes a running broker, vector store or service and
// fails when it is not healthy: the container health check of images built
// FROM scratch, which have no shell or curl.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "usage: tributary healthcheck URL | host:port\n\nAn http(s) URL must answer GET with 2xx (a service's /readyz); host:port\nmust accept a TCP connection (the broker, the vector store).")
		return errUsage
	}
	return daemon.Healthcheck(ctx, args[0], os.Getenv)
}
