package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// RunFunc is a service's whole life below main: it parses args (falling
// back to getenv for the environment), wires the service, logs to stderr,
// and returns when ctx ends or the service fails. main hands it the
// process's arguments, environment and stderr; tests call it directly with
// their own.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error

// Main runs run for the process and returns its exit code, so that a
// service's main is one line and still the only place the process exits:
//
//	func main() { os.Exit(daemon.Main("ingest", run)) }
//
// run's context ends on SIGINT or SIGTERM. The code is 0 when run returns
// nil or flag.ErrHelp (the flag set has already printed the usage), else 1
// after writing "name: error" to stderr.
//
// `name healthcheck [URL | host:port]` probes a running instance instead
// (see Healthcheck) and exits 0 when it is healthy.
func Main(name string, run RunFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) > 1 && os.Args[1] == HealthcheckCommand {
		err = runHealthcheck(ctx, os.Args[2:], os.Getenv)
	} else {
		err = run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	}
	stop()
	return exitCode(name, err, os.Stderr)
}

func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, name+":", err)
	return 1
}

// NewFlagSet returns the flag set of the service name, writing usage and
// parse errors to output. It continues on error, unlike flag.CommandLine:
// a bad flag must come back from ParseConfig as an error rather than exit
// the process below main.
func NewFlagSet(name string, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	return fs
}
