// Package eventually waits in tests for a condition that something running
// in the background makes true: a consumer catching up, a queue draining, a
// server becoming ready.
//
//	eventually.True(t, "the queue to drain", 5*time.Second, func() bool {
//		return e.Stats().Queued == 0
//	})
//	eventually.NoError(t, "/readyz to answer 200", 30*time.Second, func() error {
//		return ready(addr)
//	})
//
// Both poll with a short, growing interval (1ms doubling to 50ms) and fail
// the test with t.Fatalf, so call them from the test's goroutine. They sleep
// with time.Sleep, so inside a testing/synctest bubble the timeout and the
// interval run on the bubble's fake clock.
package eventually

import (
	"testing"
	"time"
)

const (
	firstInterval = time.Millisecond
	maxInterval   = 50 * time.Millisecond
)

// True calls cond until it returns true. If it has not after timeout, True
// fails the test with a message naming what was awaited:
// "timed out after 5s waiting for <what>". cond is called at least once,
// and once more after the timeout has passed before the test fails.
func True(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !poll(timeout, func() bool { return cond() }) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// NoError calls cond until it returns nil. If it has not after timeout,
// NoError fails the test with a message naming what was awaited and the
// last error cond returned: "timed out after 5s waiting for <what>; last
// error: <err>". Return an error that describes the state seen, so that a
// failure says how far things got.
func NoError(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	var last error
	if !poll(timeout, func() bool { last = cond(); return last == nil }) {
		t.Fatalf("timed out after %v waiting for %s; last error: %v", timeout, what, last)
	}
}

// poll calls ok until it returns true, and reports false if timeout passes
// first.
func poll(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for {
		if ok() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(interval, time.Until(deadline)))
		interval = min(2*interval, maxInterval)
	}
}
