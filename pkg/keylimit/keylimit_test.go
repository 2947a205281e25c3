package keylimit

import (
	"sync"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	now := time.Unix(1000, 0)
	r := NewRate(2, 3) // 2/s, bursts of 3
	r.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := r.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := r.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: ok=%v retry after %v, want refused, 500ms", ok, wait)
	}
	if ok, _ := r.Allow("b"); !ok {
		t.Fatal("another key was limited by a's requests")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := r.Allow("a"); !ok {
		t.Fatal("refused after the retry-after had passed")
	}
	if ok, _ := r.Allow("a"); ok {
		t.Fatal("a token appeared from nowhere")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := r.Allow("a"); !ok {
			t.Fatalf("after an hour, request %d refused: the bucket must refill to the burst", i+1)
		}
	}
	if ok, _ := r.Allow("a"); ok {
		t.Fatal("the bucket refilled beyond its burst")
	}
	var off *Rate = NewRate(0, 1)
	if ok, _ := off.Allow("x"); !ok || off != nil {
		t.Fatal("a zero rate must mean no limit")
	}
}

func TestRatePrunesIdleKeys(t *testing.T) {
	now := time.Unix(0, 0)
	r := NewRate(1, 1)
	r.now = func() time.Time { return now }
	for i := range maxIdleBuckets {
		r.Allow(string(rune(i)))
	}
	now = now.Add(time.Minute)
	r.Allow("new")
	if n := len(r.buckets); n != 1 {
		t.Fatalf("%d buckets after every old key refilled, want 1", n)
	}
}

func TestSlots(t *testing.T) {
	s := NewSlots(2, 3)
	a1, ok1 := s.Acquire("a")
	_, ok2 := s.Acquire("a")
	if !ok1 || !ok2 {
		t.Fatal("a's two slots refused")
	}
	if _, ok := s.Acquire("a"); ok {
		t.Fatal("a took a third slot")
	}
	b1, ok := s.Acquire("b")
	if !ok {
		t.Fatal("b refused while slots remain")
	}
	if _, ok := s.Acquire("c"); ok {
		t.Fatal("the total of 3 was exceeded")
	}
	a1()
	a1() // a second release must not free a second slot
	if s.Held("a") != 1 {
		t.Fatalf("a holds %d after one release, want 1", s.Held("a"))
	}
	if _, ok := s.Acquire("c"); !ok {
		t.Fatal("c refused after a slot was released")
	}
	if _, ok := s.Acquire("b"); ok {
		t.Fatal("the total was exceeded after the release was reused")
	}
	b1()
	var off *Slots = NewSlots(0, 0)
	if rel, ok := off.Acquire("x"); !ok || off != nil {
		t.Fatal("perKey 0 must mean no limit")
	} else {
		rel()
	}
}

func TestSlotsConcurrent(t *testing.T) {
	s := NewSlots(5, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held, most := 0, 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				rel, ok := s.Acquire("k")
				if !ok {
					continue
				}
				mu.Lock()
				held++
				most = max(most, held)
				mu.Unlock()
				mu.Lock()
				held--
				mu.Unlock()
				rel()
			}
		}()
	}
	wg.Wait()
	if most > 5 || s.Held("k") != 0 {
		t.Fatalf("at most %d held at once (want <= 5), %d left", most, s.Held("k"))
	}
}

func BenchmarkRateAllow(b *testing.B) {
	r := NewRate(1e9, 1e9)
	for b.Loop() {
		r.Allow("key-abcdef")
	}
}

func BenchmarkSlotsAcquireRelease(b *testing.B) {
	s := NewSlots(1<<30, 0)
	for b.Loop() {
		rel, _ := s.Acquire("key-abcdef")
		rel()
	}
}
