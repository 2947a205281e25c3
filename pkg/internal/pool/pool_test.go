package pool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunEveryChunk checks that every chunk of every region runs exactly
// once, on a valid worker, never two at a time on one worker, including
// regions started at once after New and after the workers have parked.
func TestRunEveryChunk(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := New(threads)
		for i := 0; i < 2000; i++ {
			chunks := 1 + i%37
			hits := make([]atomic.Int32, chunks)
			var busy [8]atomic.Int32
			p.Run(chunks, func(w, c int) {
				if w < 0 || w >= threads {
					t.Errorf("worker %d of %d", w, threads)
					return
				}
				if busy[w].Add(1) != 1 {
					t.Errorf("worker %d runs two chunks at once", w)
				}
				hits[c].Add(1)
				busy[w].Add(-1)
			})
			for c := range hits {
				if h := hits[c].Load(); h != 1 {
					t.Fatalf("threads %d region %d: chunk %d ran %d times", threads, i, c, h)
				}
			}
			if i%500 == 0 {
				time.Sleep(2 * spin) // let the workers park
			}
		}
		p.Close()
	}
}

func TestForCoversRange(t *testing.T) {
	p := New(3)
	defer p.Close()
	for _, n := range []int{0, 1, 7, 100, 10007} {
		seen := make([]atomic.Int32, n)
		p.For(n, 3, func(w, lo, hi int) {
			if w < 0 || w >= 3 || lo >= hi {
				t.Errorf("bad chunk w=%d [%d,%d)", w, lo, hi)
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Fatalf("n=%d: item %d covered %d times", n, i, seen[i].Load())
			}
		}
	}
}

// BenchmarkRun is the cost of one empty region: the hand-off a forward pass
// pays per fused matmul.
func BenchmarkRun(b *testing.B) {
	p := New(2)
	defer p.Close()
	f := func(int, int) {}
	for b.Loop() {
		p.Run(2, f)
	}
}

// BenchmarkSpawn is the hand-off the pool replaced: a goroutine per extra
// thread and a WaitGroup per region.
func BenchmarkSpawn(b *testing.B) {
	f := func(int) {}
	for b.Loop() {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); f(1) }()
		f(0)
		wg.Wait()
	}
}

// TestForAllocatesNothing checks that a parallel loop allocates nothing per
// call (a decode step runs dozens), and that it still covers every item.
func TestForAllocatesNothing(t *testing.T) {
	p := New(2)
	defer p.Close()
	var sum atomic.Int64
	f := func(_, lo, hi int) { sum.Add(int64(hi - lo)) }
	if a := testing.AllocsPerRun(100, func() { p.For(1000, 10, f) }); a != 0 {
		t.Errorf("%v allocations per For, want 0", a)
	}
	if got := sum.Load(); got != 101*1000 {
		t.Errorf("covered %d items, want %d", got, 101*1000)
	}
}
