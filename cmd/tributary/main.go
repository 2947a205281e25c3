// Command tributary is the one-binary CLI of the Tributary RAG suite: the
// standalone broker, the embedded vector store, local LLM generation, the
// inference server and the operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/tributary-rag/tributary/pkg/docparse"
)

// command is one subcommand: it parses its own flags from args and runs
// until ctx is cancelled or its work is done.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"broker":      {"standalone Kafka-protocol broker (kfake)", runBroker},
		"dev":         {"the whole suite in one process on embedded defaults", runDev},
		"ingest":      {"upload files or directories to the ingest API", runIngest},
		"ask":         {"ask a question over the chat WebSocket and stream the answer", runAsk},
		"search":      {"ranked chunks for a query from POST /v1/search", runSearch},
		"eval":        {"retrieval quality (recall@k, MRR, nDCG, cited-relevant rate) on a labeled corpus", runEval},
		"audit":       {"verify an audit log (verify), stream the audit export (export), rotate, rewrap or shred audit keys", runAudit},
		"vectordb":    {"embedded vector store serving Qdrant's gRPC API", runVectorDB},
		"llm":         {"generate text locally from a GGUF model", runLLM},
		"inference":   {"OpenAI-compatible inference server on a GGUF model", runInference},
		"healthcheck": {"exit 0 when a service URL answers 2xx or a broker/store port accepts connections", runHealthcheck},
	}
}

// errUsage reports bad command-line usage; main prints usage and exits 2.
var errUsage = errors.New("usage")

// parseInterspersed parses args with fset, allowing positional arguments
// before, between and after the flags (flag.Parse stops at the first), and
// returns the positional arguments in order. Its error is fset.Parse's.
func parseInterspersed(fset *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			return nil, err
		}
		if fset.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fset.Arg(0))
		args = fset.Args()[1:]
	}
}

func main() {
	// tributary dev parses documents in children of this binary.
	if code, ok := docparse.RunChild(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tributary:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tributary: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return errUsage
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: tributary <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}
