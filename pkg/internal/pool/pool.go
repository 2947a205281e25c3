// Package pool is the persistent worker pool behind the CPU kernels: a
// fixed set of goroutines that wait for work on one atomic word, so handing
// a parallel region to every thread costs an atomic store and a wake-up of
// spinning workers instead of a goroutine start per region. A forward pass
// opens dozens of regions per token (one per fused matmul and attention).
//
// A region is a number of chunks that every thread, the caller's included,
// claims from a shared counter, and it ends when every chunk has finished,
// not when every worker has checked in: a worker whose OS thread another
// process holds off the CPU simply claims nothing, and the caller does its
// share. (Waiting for each worker to check in made every region as slow as
// the most delayed thread on a loaded machine.)
//
// Waiters spin for a short time before they park, so back-to-back regions
// hand over in well under a microsecond, while an idle pool (between
// requests) sleeps instead of burning a core.
package pool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spin is how long a waiting thread polls before it parks: long enough to
// cover the serial work between two regions of a forward pass (a norm, RoPE,
// a quantization), short enough not to hold a core when there is no work.
const spin = 50 * time.Microsecond

// closed in the low half of word: the region's chunks are not yet (or no
// longer) claimable.
const closed = 1<<32 - 1

// Pool runs parallel regions on a fixed number of threads: the caller's
// goroutine and Threads()-1 workers. Run is not safe for concurrent use;
// one Pool serves one forward pass at a time.
type Pool struct {
	threads int
	// word is the region generation (high 32 bits) and the next chunk to
	// claim (low 32 bits); a chunk is claimed by a compare-and-swap that
	// also checks the generation, so a late worker never runs a chunk of a
	// region other than the one whose job and size it read.
	word     atomic.Uint64
	job      atomic.Value // func(worker, chunk int) of the open region
	chunks   atomic.Int64 // chunks in the open region
	finished atomic.Int64 // chunks of the open region that have returned
	stopped  atomic.Bool

	// For's loop while it runs, with its region function bound once, so
	// that a call allocates nothing.
	forF           func(worker, lo, hi int)
	forN, forChunk int
	forRun         func(worker, chunk int)

	mu        sync.Mutex
	cond      *sync.Cond   // idle workers park here
	sleepers  atomic.Int64 // workers parked (or about to park)
	waiting   atomic.Bool  // the caller parked on done
	done      chan struct{}
	closeOnce sync.Once
}

// New starts a pool of threads threads (≤ 0: GOMAXPROCS). Close stops it.
func New(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, done: make(chan struct{}, 1)}
	p.cond = sync.NewCond(&p.mu)
	p.forRun = func(w, i int) { p.forF(w, i*p.forChunk, min(p.forN, (i+1)*p.forChunk)) }
	for w := 1; w < threads; w++ {
		go p.worker(w)
	}
	return p
}

// Threads is the number of threads a region runs on, the caller's included.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers; Run must not be called afterwards.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		p.stopped.Store(true)
		p.mu.Lock()
		p.word.Add(1 << 32)
		p.cond.Broadcast()
		p.mu.Unlock()
	})
}

// Run calls f(worker, chunk) for every chunk in [0, chunks), spread over
// the threads (worker is the calling thread's index in [0, Threads()), for
// per-thread scratch), and returns when every call has returned. Calls on
// one thread never overlap.
func (p *Pool) Run(chunks int, f func(worker, chunk int)) {
	if chunks <= 0 {
		return
	}
	if p.threads == 1 || chunks == 1 || chunks >= closed {
		for i := 0; i < chunks; i++ {
			f(0, i)
		}
		return
	}
	gen := p.word.Load()>>32 + 1
	p.word.Store(gen<<32 | closed) // late workers of the last region see a new generation
	p.job.Store(f)
	p.chunks.Store(int64(chunks))
	p.finished.Store(0)
	open := gen << 32
	p.word.Store(open)
	if p.sleepers.Load() > 0 {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	p.work(0, open)
	p.wait(int64(chunks))
}

// For splits [0, n) into chunks of at least grain items and runs f on them
// from every thread (worker as in Run).
func (p *Pool) For(n, grain int, f func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	chunk := max(grain, 1, (n+p.threads*8-1)/(p.threads*8))
	p.forF, p.forN, p.forChunk = f, n, chunk
	p.Run((n+chunk-1)/chunk, p.forRun)
	p.forF = nil
}

// work claims and runs chunks of the region whose open word was seen, and
// returns the word it saw last.
func (p *Pool) work(w int, seen uint64) uint64 {
	f, _ := p.job.Load().(func(int, int))
	n := p.chunks.Load()
	// The generation must not have moved while job and size were read.
	cur := p.word.Load()
	for cur>>32 == seen>>32 && int64(uint32(cur)) < n {
		if !p.word.CompareAndSwap(cur, cur+1) {
			cur = p.word.Load()
			continue
		}
		f(w, int(uint32(cur)))
		if p.finished.Add(1) == n && p.waiting.Load() {
			select {
			case p.done <- struct{}{}:
			default:
			}
		}
		cur = p.word.Load()
	}
	return cur
}

// wait returns when all n chunks of the region have finished. A finisher
// signals done only when it sees the caller parked; a signal left over from
// an earlier region is harmless because the count is checked again.
func (p *Pool) wait(n int64) {
	deadline := time.Now().Add(spin)
	for i := 0; p.finished.Load() < n; i++ {
		if i&1023 == 1023 && time.Now().After(deadline) {
			p.waiting.Store(true)
			for p.finished.Load() < n {
				<-p.done
			}
			p.waiting.Store(false)
			return
		}
	}
}

func (p *Pool) worker(w int) {
	var last uint64 // the word's initial value
	for {
		cur := p.await(last)
		if p.stopped.Load() {
			return
		}
		if uint32(cur) != closed {
			cur = p.work(w, cur)
		}
		last = cur
	}
}

// await returns the word once it differs from last, spinning first and
// then parking on the condition variable.
func (p *Pool) await(last uint64) uint64 {
	deadline := time.Now().Add(spin)
	for i := 0; ; i++ {
		if cur := p.word.Load(); cur != last {
			return cur
		}
		if i&1023 == 1023 {
			if time.Now().After(deadline) {
				break
			}
			runtime.Gosched() // let the engine's other goroutines use this P
		}
	}
	p.mu.Lock()
	p.sleepers.Add(1)
	for p.word.Load() == last {
		p.cond.Wait()
	}
	p.sleepers.Add(-1)
	cur := p.word.Load()
	p.mu.Unlock()
	return cur
}
