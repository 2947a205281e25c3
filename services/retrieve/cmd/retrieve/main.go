// Command retrieve runs Tributary's retrieval service: it indexes
// tributary.chunks.embedded.v1 into Qdrant, applies the deletions and
// versions of tributary.documents.v1 (publishing document.indexed), and
// answers tributary.queries.embedded.v1 on tributary.queries.retrieved.v1.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/retrieve.md).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/services/retrieve"
)

func main() { os.Exit(daemon.Main("retrieve", run)) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s := retrieve.DefaultSettings()
	return daemon.RunService(ctx, "retrieve", daemon.NeedKafka|daemon.NeedQdrant, &s, args, getenv, stderr)
}
