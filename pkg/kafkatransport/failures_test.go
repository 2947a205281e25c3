package kafkatransport_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	kt "github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// failing is a response that carries a business error.
type failing struct{ err error }

func (f failing) Failed() error { return f.err }

func TestPermanentFailures(t *testing.T) {
	errBad := errors.New("bad request")
	errDown := errors.New("backend down")
	errTransport := errors.New("transport broke")
	isBad := func(err error) bool { return errors.Is(err, errBad) }
	tests := []struct {
		name        string
		isPermanent func(error) bool
		resp        any
		err         error
		wantResp    any
		wantErr     error // errors.Is target; nil means no error
		wantSame    bool  // the error is wantErr itself, not a wrapper
		wantPerm    bool
		wantPolicy  kt.Decision
	}{
		{name: "success", isPermanent: isBad, resp: "ok", wantResp: "ok"},
		{name: "failer without failure", isPermanent: isBad, resp: failing{}, wantResp: failing{}},
		{name: "permanent failure", isPermanent: isBad, resp: failing{err: errBad}, wantErr: errBad, wantPerm: true, wantPolicy: kt.DeadLetter},
		{name: "wrapped permanent failure", isPermanent: isBad, resp: failing{err: kt.Permanent(errBad)}, wantErr: errBad, wantPerm: true, wantPolicy: kt.DeadLetter},
		{name: "transient failure", isPermanent: isBad, resp: failing{err: errDown}, wantErr: errDown, wantSame: true, wantPolicy: kt.Retry},
		{name: "nil predicate", resp: failing{err: errBad}, wantErr: errBad, wantSame: true, wantPolicy: kt.Retry},
		{name: "endpoint error untouched", isPermanent: func(error) bool { return true }, resp: "ignored", err: errTransport, wantErr: errTransport, wantSame: true, wantPolicy: kt.Retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotReq any
			next := func(_ context.Context, request any) (any, error) {
				gotReq = request
				return tt.resp, tt.err
			}
			resp, err := kt.PermanentFailures(tt.isPermanent)(next)(context.Background(), "req")
			if gotReq != "req" {
				t.Errorf("next got request %v, want %q", gotReq, "req")
			}
			if tt.wantErr == nil {
				if err != nil || resp != tt.wantResp {
					t.Fatalf("PermanentFailures(next) = %v, %v, want %v, nil", resp, err, tt.wantResp)
				}
				return
			}
			if resp != nil {
				t.Errorf("PermanentFailures(next) response = %v, want nil", resp)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PermanentFailures(next) error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantSame && err != tt.wantErr { //nolint:errorlint // identity is the point
				t.Errorf("PermanentFailures(next) error = %#v, want %#v itself", err, tt.wantErr)
			}
			if got := kt.IsPermanent(err); got != tt.wantPerm {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.wantPerm)
			}
			if got := kt.DefaultErrorPolicy(err, 1, 5); got != tt.wantPolicy {
				t.Errorf("DefaultErrorPolicy(%v, 1, 5) = %v, want %v", err, got, tt.wantPolicy)
			}
		})
	}
}

// TestUnavailableIsRetriedWithoutBound: an outage of a dependency is not a
// poison message, however many attempts it takes.
func TestUnavailableIsRetriedWithoutBound(t *testing.T) {
	down := kt.Unavailable(errors.New("connection refused"))
	for _, attempt := range []int{1, 5, 500} {
		if got := kt.DefaultErrorPolicy(fmt.Errorf("index chunk: %w", down), attempt, 5); got != kt.Retry {
			t.Errorf("DefaultErrorPolicy(unavailable, attempt %d of 5) = %v, want retry", attempt, got)
		}
	}
	if got := kt.DefaultErrorPolicy(errors.New("flaky"), 5, 5); got != kt.DeadLetter {
		t.Errorf("an ordinary error after its attempts = %v, want dead-letter", got)
	}
	if kt.Unavailable(nil) != nil || !kt.IsUnavailable(down) || kt.IsUnavailable(errors.New("x")) {
		t.Error("Unavailable/IsUnavailable")
	}
}
