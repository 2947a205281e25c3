package cputime_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/cputime"
)

// TestProcessCountsWork: busy work shows up as CPU time, sleeping does not.
func TestProcessCountsWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("not measured on " + runtime.GOOS)
	}
	start := cputime.Process()
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	busy := cputime.Process() - start
	if busy < 20*time.Millisecond {
		t.Errorf("50 ms of busy work counted as %v of CPU (%d loops)", busy, x)
	}
	start = cputime.Process()
	time.Sleep(50 * time.Millisecond)
	if idle := cputime.Process() - start; idle > 25*time.Millisecond {
		t.Errorf("50 ms of sleep counted as %v of CPU", idle)
	}
}
