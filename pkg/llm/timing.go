package llm

import (
	"fmt"
	"slices"
	"time"

	"github.com/tributary-rag/tributary/pkg/cputime"
)

// TimeDecodeSteps measures decode steps of batch sequences that already
// hold ctx positions: it returns the median wall time and the median
// process CPU time (user+system) of one step over iters steps. It is for
// benchmarks and must not run concurrently with an Engine on m.
func TimeDecodeSteps(m *Model, batch, ctx, iters int) (wall, cpu time.Duration, err error) {
	caches := make([]*kvCache, batch)
	for i := range caches {
		caches[i] = newKVCache(m.cfg.Layers)
		entries := make([]batchEntry, ctx)
		for p := range entries {
			entries[p] = batchEntry{cache: caches[i], token: int32((p*7 + i) % m.cfg.Vocab), pos: p}
		}
		if _, err := m.forward(entries); err != nil {
			return 0, 0, fmt.Errorf("prefill: %w", err)
		}
	}
	walls := make([]time.Duration, iters)
	cpus := make([]time.Duration, iters)
	entries := make([]batchEntry, batch)
	for it := 0; it < iters; it++ {
		for i := range entries {
			entries[i] = batchEntry{cache: caches[i], token: int32(it % m.cfg.Vocab), pos: ctx + it, wantLogits: true}
		}
		c0 := cputime.Process()
		t0 := time.Now()
		if _, err := m.forward(entries); err != nil {
			return 0, 0, err
		}
		walls[it] = time.Since(t0)
		cpus[it] = cputime.Process() - c0
	}
	return median(walls), median(cpus), nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
