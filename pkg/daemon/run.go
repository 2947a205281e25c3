package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/oklog/run"
)

// Group runs a service's long-lived parts (HTTP server, subscribers) with
// oklog/run: when one returns, or the context passed to Run is done, or the
// process gets SIGINT or SIGTERM, every part is told to stop and Run waits
// for all of them. The zero Group is ready to use; a Group is not safe for
// concurrent use and runs once.
type Group struct {
	actors []actor
}

type actor struct {
	name      string
	execute   func() error
	interrupt func(error)
}

// Add runs fn(ctx) as a part named name; ctx is cancelled when the group
// stops. fn should return nil after a graceful stop (as
// kafkatransport.Subscriber.Run does).
func (g *Group) Add(name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	g.actors = append(g.actors, actor{
		name: name,
		execute: func() error {
			if err := fn(ctx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		},
		interrupt: func(error) { cancel() },
	})
}

// AddHTTP serves srv on ln, or on srv.Addr when ln is nil, and shuts it
// down gracefully (waiting up to drain for open requests) when the group
// stops.
func (g *Group) AddHTTP(srv *http.Server, ln net.Listener, drain time.Duration) {
	g.actors = append(g.actors, actor{
		name: "http",
		execute: func() error {
			if ln == nil {
				l, err := net.Listen("tcp", srv.Addr)
				if err != nil {
					return fmt.Errorf("http: listen: %w", err)
				}
				ln = l
			}
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		},
		interrupt: func(error) {
			ctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		},
	})
}

// Run runs every part until the first returns, ctx is done or a signal
// arrives, then stops them all and returns the first part's error (nil
// after a signal or ctx).
func (g *Group) Run(ctx context.Context, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var rg run.Group
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	// The signal handler's context is not ctx: when ctx ends, the actor
	// below returns nil first, and the handler's own error is ignored.
	rg.Add(run.SignalHandler(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM))
	rg.Add(func() error {
		<-sctx.Done()
		return nil
	}, func(error) { scancel() })
	for _, a := range g.actors {
		rg.Add(a.execute, a.interrupt)
	}
	logger.Info("started", "parts", len(g.actors))
	err := rg.Run()
	var sig run.SignalError
	if errors.As(err, &sig) {
		logger.Info("stopping", "signal", sig.Signal.String())
		err = nil
	}
	if err != nil {
		logger.Error("stopped", "error", err)
		return err
	}
	logger.Info("stopped")
	return nil
}
