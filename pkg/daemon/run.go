package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/oklog/run"
)

// Group runs a service's long-lived parts (HTTP server, subscribers) with
// oklog/run: when one returns, or the context passed to Run is done, every
// part is told to stop and Run waits for all of them. Signals end that
// context (Main's signal.NotifyContext), so they are caught in one place. The zero Group is ready to use; a Group is not safe for
// concurrent use and runs once.
type Group struct {
	parts []part
}

// part is a long-lived piece of a service: run runs it until ctx is done
// (or it fails); stop, if set, is called instead of cancelling ctx.
type part struct {
	name string
	run  func(ctx context.Context) error
	stop func(ctx context.Context)
}

// Add runs fn(ctx) as a part named name; ctx is cancelled when the group
// stops. fn should return nil after a graceful stop (as
// kafkatransport.Subscriber.Run does).
func (g *Group) Add(name string, fn func(ctx context.Context) error) {
	g.parts = append(g.parts, part{name: name, run: fn})
}

// AddHTTP serves srv on ln, or on srv.Addr when ln is nil, and shuts it
// down gracefully (waiting up to drain for open requests) when the group
// stops.
func (g *Group) AddHTTP(srv *http.Server, ln net.Listener, drain time.Duration) {
	g.parts = append(g.parts, part{
		name: "http",
		run: func(context.Context) error {
			if ln == nil {
				l, err := net.Listen("tcp", srv.Addr)
				if err != nil {
					return fmt.Errorf("listen: %w", err)
				}
				ln = l
			}
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		stop: func(ctx context.Context) {
			sctx, cancel := context.WithTimeout(ctx, drain)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
		},
	})
}

// Run runs every part until the first returns or ctx is done, then stops
// them all and returns the first part's error (nil after ctx). It logs
// start and stop but not the error: the caller handles it, once.
func (g *Group) Run(ctx context.Context, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var rg run.Group
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	rg.Add(func() error {
		<-sctx.Done()
		return nil
	}, func(error) { scancel() })
	for _, p := range g.parts {
		pctx, pcancel := context.WithCancel(ctx)
		rg.Add(func() error {
			if err := p.run(pctx); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			return nil
		}, func(error) {
			if p.stop != nil {
				p.stop(context.WithoutCancel(ctx))
			}
			pcancel()
		})
	}
	logger.Info("started", "parts", len(g.parts))
	err := rg.Run()
	logger.Info("stopped", "failed", err != nil)
	return err
}
