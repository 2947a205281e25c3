// Command moderate runs Tributary's moderation service: embedded OPA input
// and output policies between tributary.queries.received.v1 and
// tributary.queries.approved.v1 / tributary.queries.rejected.v1, and
// between tributary.answers.generated.v1 and tributary.answers.moderated.v1,
// with every decision on tributary.audit.events.v1.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/moderate.md).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/services/moderate"
)

func main() { os.Exit(daemon.Main("moderate", run)) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s := moderate.DefaultSettings()
	return daemon.RunService(ctx, "moderate", daemon.NeedKafka, &s, args, getenv, stderr)
}
