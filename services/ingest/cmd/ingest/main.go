// Command ingest runs Tributary's document ingest service: the HTTP API
// POST/GET/DELETE /v1/documents and the consumer of
// tributary.ingest.requests.v1, publishing document and chunk events, and
// the consumer of tributary.documents.v1 that records which versions the
// retrieve service has indexed.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/ingest.md).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/docparse"
	"github.com/tributary-rag/tributary/services/ingest"
)

func main() {
	// Documents are parsed in children of this binary.
	if code, ok := docparse.RunChild(); ok {
		os.Exit(code)
	}
	os.Exit(daemon.Main("ingest", run))
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s := ingest.DefaultSettings()
	return daemon.RunService(ctx, "ingest", daemon.NeedKafka|daemon.NeedDataDir|daemon.NeedAPIKeys, &s, args, getenv, stderr)
}
