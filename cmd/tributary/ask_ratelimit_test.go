package main

import (
	"context"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
)

// TestAskWaitsOutRateLimit: an ask refused with rate_limited (no done
// follows) is asked again after retry_after_ms instead of waiting forever
// for a done, and every ask of a quick series is answered.
func TestAskWaitsOutRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: starts the whole suite")
	}
	logs := &daemontest.Buffer{}
	services := defaultDevServices()
	services.Edge.AsksPerSecond, services.Edge.AskBurst = 5, 1
	dev := startTestDevOpts(t, devOptions{DataDir: t.TempDir(), Logs: logs, Services: services}, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	for i := range 4 {
		res, err := ask(ctx, askRequest{Server: dev.url, APIKey: keyA, Question: "What is the plan?"}, nil)
		if err != nil || res.FinishReason == "" {
			t.Fatalf("ask %d: %+v, %v", i, res, err)
		}
	}
	// A burst of 1 at 5/s: the last three each waited about 200 ms.
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("4 asks took %v: the rate limit did not apply, so this test shows nothing", took)
	}
}
