// Command embed runs Tributary's embedding service: it consumes
// tributary.chunks.v1 and tributary.queries.approved.v1 and produces
// tributary.chunks.embedded.v1 and tributary.queries.embedded.v1 with
// sparse (BM25) vectors.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/embed.md).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/services/embed"
)

func main() { os.Exit(daemon.Main("embed", run)) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s := embed.DefaultSettings()
	return daemon.RunService(ctx, "embed", daemon.NeedKafka, &s, args, getenv, stderr)
}
