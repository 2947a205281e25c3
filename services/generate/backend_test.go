package generate

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

func TestBackendAround(t *testing.T) {
	errConsume := errors.New("consume failed")
	errEngine := errors.New("engine failed")
	tests := []struct {
		name      string
		consume   error
		engine    error // what Run returns once stopped; nil: ctx.Err()
		wantErr   error
		wantWrap  bool // the error reads "engine: …"
		noEngine  bool // Backend.Run is nil
		wantEnded bool // the engine ran and was stopped
	}{
		{name: "clean", wantEnded: true},
		{name: "consume error", consume: errConsume, wantErr: errConsume, wantEnded: true},
		{name: "engine error", engine: errEngine, wantErr: errEngine, wantWrap: true, wantEnded: true},
		{name: "consume error wins", consume: errConsume, engine: errEngine, wantErr: errConsume, wantEnded: true},
		{name: "no engine", consume: errConsume, wantErr: errConsume, noEngine: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				engineCtx := make(chan context.Context, 1)
				ended := make(chan struct{})
				b := &Backend{Generator: Extractive{}}
				if !tt.noEngine {
					b.Run = func(ctx context.Context) error {
						defer close(ended)
						engineCtx <- ctx
						<-ctx.Done()
						if tt.engine != nil {
							return tt.engine
						}
						return ctx.Err()
					}
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				consume := func(ctx context.Context) error {
					if tt.noEngine {
						return tt.consume
					}
					ectx := <-engineCtx
					// Shutdown: the consumer's context ends and it drains; the
					// engine must keep running until the consumer returns.
					cancel()
					<-ctx.Done()
					synctest.Wait() // the engine has had every chance to stop
					select {
					case <-ectx.Done():
						t.Error("engine stopped while the consumer was draining")
					default:
					}
					return tt.consume
				}
				err := b.Around(consume)(ctx)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Around(consume)() = %v, want %v", err, tt.wantErr)
				}
				if tt.wantWrap && (err == nil || err.Error() != "engine: "+tt.wantErr.Error()) {
					t.Errorf("Around(consume)() = %v, want it to read engine: %v", err, tt.wantErr)
				}
				select {
				case <-ended:
					if !tt.wantEnded {
						t.Error("engine ran without a Run")
					}
				default:
					if tt.wantEnded {
						t.Error("engine still running after Around returned")
					}
				}
			})
		})
	}
}
