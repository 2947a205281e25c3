// Package keylimit keeps one client from taking what every client shares:
// a token bucket of requests per key (Rate) and a bound on what one key
// holds at once, under a global bound (Slots). The key is whatever names
// the client — an API key's name, a tenant.
package keylimit

import (
	"math"
	"sync"
	"time"
)

// Rate allows each key rate requests per second on average and burst at
// once. Safe for concurrent use. A nil *Rate allows everything.
type Rate struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxIdleBuckets is how many buckets are kept before full ones (keys idle
// long enough to have refilled) are dropped: memory stays bounded however
// many keys appear.
const maxIdleBuckets = 4096

// NewRate returns a limiter of perSecond requests per key with bursts of
// burst (at least 1). perSecond <= 0 returns nil: no limit.
func NewRate(perSecond float64, burst int) *Rate {
	if perSecond <= 0 {
		return nil
	}
	return &Rate{rate: perSecond, burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes a token of key's bucket. When there is none it returns
// false and how long until there will be one (for Retry-After).
func (r *Rate) Allow(key string) (ok bool, retryAfter time.Duration) {
	if r == nil {
		return true, 0
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[key]
	if b == nil {
		if len(r.buckets) >= maxIdleBuckets {
			r.prune(now)
		}
		b = &bucket{tokens: r.burst, at: now}
		r.buckets[key] = b
	}
	b.tokens = math.Min(r.burst, b.tokens+now.Sub(b.at).Seconds()*r.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / r.rate * float64(time.Second))
	return false, wait
}

func (r *Rate) prune(now time.Time) {
	for k, b := range r.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*r.rate >= r.burst {
			delete(r.buckets, k)
		}
	}
}

// Slots bounds what one key holds at once (connections, uploads in
// progress) to perKey, and what all keys hold together to total, so one
// key can never fill the total. Safe for concurrent use. A nil *Slots
// admits everything.
type Slots struct {
	perKey, total int

	mu    sync.Mutex
	used  map[string]int
	inUse int
}

// NewSlots returns slots of perKey per key and total in all (total <= 0:
// no global bound). perKey <= 0 returns nil: no limit.
func NewSlots(perKey, total int) *Slots {
	if perKey <= 0 {
		return nil
	}
	return &Slots{perKey: perKey, total: total, used: map[string]int{}}
}

// Acquire takes a slot for key. It returns false, taking nothing, when
// the key holds perKey slots or all keys hold total; otherwise call
// release, once, when done.
func (s *Slots) Acquire(key string) (release func(), ok bool) {
	if s == nil {
		return func() {}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used[key] >= s.perKey || (s.total > 0 && s.inUse >= s.total) {
		return nil, false
	}
	s.used[key]++
	s.inUse++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.used[key]--; s.used[key] == 0 {
				delete(s.used, key)
			}
			s.inUse--
		})
	}, true
}

// Held returns the slots key holds.
func (s *Slots) Held(key string) int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[key]
}
