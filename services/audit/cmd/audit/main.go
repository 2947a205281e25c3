// Command audit runs Tributary's audit service: it consumes every
// tributary topic and audit.events into an encrypted, hash-chained log in
// the data directory and serves GET /v1/audit/export to API keys with the
// compliance group.
//
// Configuration comes from TRIBUTARY_* environment variables, each
// overridable by the flag of the same name (see docs/audit.md).
package main

import (
	"context"
	"io"
	"os"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/services/audit"
)

func main() { os.Exit(daemon.Main("audit", run)) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	// VAULT_ADDR and the other variables of Vault's CLI switch audit keys
	// to Vault; TRIBUTARY_VAULT_* and the --vault-* flags override them.
	s := audit.DefaultSettings().WithVaultEnv(getenv)
	return daemon.RunService(ctx, "audit", daemon.NeedKafka|daemon.NeedDataDir|daemon.NeedAPIKeys, &s, args, getenv, stderr)
}
