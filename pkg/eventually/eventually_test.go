package eventually_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-rag/tributary/pkg/eventually"
)

// recorder stands in for the test handed to True and NoError, so that a
// failure can be observed instead of failing this test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// record runs f with a recorder on its own goroutine, as Fatalf ends the
// goroutine that calls it.
func record(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestTrueReturnsWhenConditionHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ready atomic.Bool
		time.AfterFunc(3*time.Second, func() { ready.Store(true) })
		start := time.Now()
		r := record(t, func(tb testing.TB) {
			eventually.True(tb, "ready", 5*time.Second, ready.Load)
		})
		if r.failed {
			t.Fatalf("True failed: %s", r.msg)
		}
		// The poll interval is at most 50ms, so True notices soon after.
		if got := time.Since(start); got < 3*time.Second || got > 3*time.Second+50*time.Millisecond {
			t.Errorf("True returned after %v, want 3s to 3.05s", got)
		}
	})
}

func TestTrueTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var last time.Time
		r := record(t, func(tb testing.TB) {
			eventually.True(tb, "the queue to drain", time.Minute, func() bool {
				last = time.Now()
				return false
			})
		})
		if !r.failed {
			t.Fatal("True succeeded on a condition that never holds")
		}
		if want := "timed out after 1m0s waiting for the queue to drain"; r.msg != want {
			t.Errorf("failure = %q, want %q", r.msg, want)
		}
		if got := time.Since(start); got != time.Minute {
			t.Errorf("True failed after %v, want 1m0s", got)
		}
		if got := last.Sub(start); got != time.Minute {
			t.Errorf("last call at %v, want one at the timeout", got)
		}
	})
}

func TestNoErrorReturnsOnNil(t *testing.T) {
	calls := 0
	r := record(t, func(tb testing.TB) {
		eventually.NoError(tb, "three calls", 10*time.Second, func() error {
			calls++
			if calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	})
	if r.failed {
		t.Fatalf("NoError failed: %s", r.msg)
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

func TestNoErrorReportsLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		r := record(t, func(tb testing.TB) {
			eventually.NoError(tb, "the consumer to catch up", 2*time.Second, func() error {
				calls++
				return fmt.Errorf("offset %d", calls)
			})
		})
		if !r.failed {
			t.Fatal("NoError succeeded on a condition that always fails")
		}
		want := fmt.Sprintf("timed out after 2s waiting for the consumer to catch up; last error: offset %d", calls)
		if r.msg != want {
			t.Errorf("failure = %q, want %q", r.msg, want)
		}
		if calls < 2 {
			t.Errorf("cond called %d times, want several", calls)
		}
	})
}
