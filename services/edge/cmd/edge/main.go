// Command edge runs Tributary's WebSocket edge: chat clients connect to
// GET /v1/chat with an API key, ask questions (published to
// tributary.queries.received.v1) and get the moderated answers streamed
// back from tributary.answers.moderated.v1 and refusals from
// tributary.queries.rejected.v1.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/edge.md).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/services/edge"
)

func main() { os.Exit(daemon.Main("edge", run)) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s := edge.DefaultSettings()
	return daemon.RunService(ctx, "edge", daemon.NeedKafka|daemon.NeedAPIKeys, &s, args, getenv, stderr)
}
