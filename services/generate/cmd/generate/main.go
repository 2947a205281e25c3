// Command generate runs Tributary's answer generation service: it consumes
// tributary.queries.retrieved.v1 and streams cited answers to
// tributary.answers.generated.v1, generating with an OpenAI-compatible
// server, the native engine on a GGUF file, or extractively without a
// model.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/generate.md).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/services/generate"
)

func main() { os.Exit(daemon.Main("generate", run)) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s := generate.DefaultSettings()
	return daemon.RunService(ctx, "generate", daemon.NeedKafka, &s, args, getenv, stderr)
}
