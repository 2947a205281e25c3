package vectordb

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/qdrant/go-client/qdrant"
	"github.com/tributary-rag/tributary/pkg/hnsw"
	"github.com/tributary-rag/tributary/pkg/vecmath"
)

// annIndex is an approximate nearest-neighbour index over one dense space,
// keyed by slot. Implementations are guarded by the collection's lock:
// Add and Remove run under the write lock, Search under the read lock and
// must be safe for concurrent Search calls.
type annIndex interface {
	// AddBatch adds several vectors, in parallel where it can.
	AddBatch(slots []uint32, vecs [][]float32)
	// Assign gives slots new entries (retiring their old ones) and returns
	// their handles for Insert; it runs under the write lock.
	Assign(slots []uint32) []uint32
	// Insert stores the vectors of assigned handles. It may run without the
	// collection lock, concurrently with Search; vecs must not be mutated.
	Insert(handles []uint32, vecs [][]float32)
	Remove(slot uint32)
	// Stats reports live and tombstoned entries.
	Stats() (live, deleted int)
	// Search returns up to k slots accepted by accept (nil accepts all),
	// best first.
	Search(q []float32, k, ef int, accept func(slot uint32) bool) []uint32
}

// annConfig decides when searches use the ANN index.
type annConfig struct {
	// threshold is the number of vectors in a space below which search is
	// always exact.
	threshold int
	// minANNMatches is the estimated number of filter matches below which
	// a filtered search is always exact.
	minANNMatches int
	// ef is the default search beam width.
	ef int
	// newIndex builds an empty index for a space; nil disables ANN.
	newIndex func(dim int, dist qdrant.Distance, m, efConstruct int, quantile float32) annIndex
	// vectorDir holds the files of on_disk vectors ("": keep them on the
	// heap); fileSeq numbers them so that names are never reused.
	vectorDir string
	fileSeq   *atomic.Uint64
}

// scored is one search hit.
type scored struct {
	slot  uint32
	score float32
}

// smallerBetter reports whether lower scores rank first for the space.
func (d *denseSpace) smallerBetter() bool {
	return d.dist == 2 || d.dist == 4 // Euclid, Manhattan
}

// score returns the Qdrant score of stored vector v for query q.
func (d *denseSpace) score(q, v []float32) float32 {
	switch d.dist {
	case 2: // Euclid
		return float32(math.Sqrt(float64(vecmath.L2Sq(q, v))))
	case 4: // Manhattan
		var s float32
		for i := range q {
			s += float32(math.Abs(float64(q[i] - v[i])))
		}
		return s
	default: // Cosine (both sides normalized), Dot
		return vecmath.Dot(q, v)
	}
}

// hitHeap is a container/heap of hits whose root is the least by less.
type hitHeap struct {
	h    []scored
	less func(a, b scored) bool
}

func (q *hitHeap) Len() int           { return len(q.h) }
func (q *hitHeap) Less(i, j int) bool { return q.less(q.h[i], q.h[j]) }
func (q *hitHeap) Swap(i, j int)      { q.h[i], q.h[j] = q.h[j], q.h[i] }
func (q *hitHeap) Push(x any)         { q.h = append(q.h, x.(scored)) }
func (q *hitHeap) Pop() any {
	x := q.h[len(q.h)-1]
	q.h = q.h[:len(q.h)-1]
	return x
}

// topK keeps the k best hits; the worst kept hit is at the root.
type topK struct {
	k      int
	better func(a, b scored) bool
	hitHeap
}

func newTopK(k int, better func(a, b scored) bool) *topK {
	return &topK{k: k, better: better, hitHeap: hitHeap{less: func(a, b scored) bool { return better(b, a) }}}
}

func (t *topK) offer(s scored) {
	if t.k <= 0 {
		return
	}
	if len(t.h) < t.k {
		heap.Push(t, s)
		return
	}
	if t.better(s, t.h[0]) {
		t.h[0] = s
		heap.Fix(t, 0)
	}
}

// sorted returns the kept hits best first.
func (t *topK) sorted() []scored {
	out := make([]scored, len(t.h))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(t).(scored)
	}
	return out
}

// betterFunc orders hits by score, ties by point id so results are stable.
func (c *collection) betterFunc(smaller bool) func(a, b scored) bool {
	return func(a, b scored) bool {
		if a.score != b.score {
			if smaller {
				return a.score < b.score
			}
			return a.score > b.score
		}
		return c.points[a.slot].id.less(c.points[b.slot].id)
	}
}

// searchRequest is one nearest-neighbour search in one space.
type searchRequest struct {
	pred      predicate
	filter    *qdrant.Filter // the source of pred, for index planning
	limit     int
	threshold *float32
	exact     bool
	ef        int
	restrict  []uint32 // when non-nil, only these slots are candidates
	quant     *qdrant.QuantizationSearchParams
	exclude   map[uint32]bool
	shards    shardSel // the selected shards, for a query by point id
}

func passes(score float32, threshold *float32, smaller bool) bool {
	if threshold == nil {
		return true
	}
	if smaller {
		return score <= *threshold
	}
	return score >= *threshold
}

// accept reports whether slot may be returned: live, has a vector in the
// space, not excluded, and matching the filter. Caller holds c.mu.
func (c *collection) acceptFunc(present func(uint32) bool, r *searchRequest) func(uint32) bool {
	return func(slot uint32) bool {
		if int(slot) >= len(c.points) || !present(slot) || r.exclude[slot] {
			return false
		}
		p := &c.points[slot]
		return p.live && (r.pred == nil || r.pred(p.id, p.payload))
	}
}

// searchDense finds the best points for query q in space d. Caller holds
// c.mu for reading.
func (c *collection) searchDense(d *denseSpace, q []float32, r searchRequest) []scored {
	if r.limit <= 0 {
		return nil
	}
	if d.dist == 1 { // Cosine
		q = normalize(q)
	}
	smaller := d.smallerBetter()
	better := c.betterFunc(smaller)
	accept := c.acceptFunc(func(s uint32) bool { return d.present[s] }, &r)

	cands := r.restrict
	var candSet map[uint32]struct{}
	if cands == nil && r.pred != nil {
		candSet = c.indexCandidates(r.filter)
	}
	if !r.exact && !r.quant.GetIgnore() && d.ann != nil && d.annReady.Load() && r.restrict == nil && d.count >= c.annCfg.threshold && r.limit <= 4096 {
		useANN := true
		ef := max(r.ef, c.annCfg.ef, r.limit)
		if r.pred != nil {
			// A selective filter is cheaper and exact as a scan of its
			// matches; the graph search serves broad filters. A payload
			// index bounds the matches; otherwise a sample estimates them.
			est := len(candSet)
			if candSet == nil {
				est = c.estimateMatches(r.pred, d.count)
			}
			useANN = float64(est) >= hnsw.FilterExactThreshold*float64(d.count) && est >= c.annCfg.minANNMatches
			// The filter rejects part of every neighbourhood, so widen the
			// beam by the inverse selectivity (at most 4×): at 50 % this
			// turned 99.9 % of queries with every exact top-10 match into
			// 100 % on the 100k benchmark.
			if est > 0 {
				ef = int(float64(ef) * min(float64(d.count)/float64(est), 4))
			}
		}
		if useANN {
			var filt func(uint32) bool
			if r.pred != nil || len(r.exclude) > 0 {
				filt = accept
			}
			k := annCandidates(d, r.limit, r.quant)
			slots := d.ann.Search(q, k, min(max(ef, k), 1<<16), filt)
			if len(slots) >= r.limit {
				out := make([]scored, 0, len(slots))
				for _, s := range slots {
					// The filter is a security boundary: check every hit
					// whatever the index did.
					if !accept(s) {
						continue
					}
					sc := d.score(q, d.row(s))
					if passes(sc, r.threshold, smaller) {
						out = append(out, scored{s, sc})
					}
				}
				sortScored(out, better)
				c.annSearches.Add(1)
				return truncate(out, r.limit)
			}
			// Fewer hits than asked for: the filter may be more selective
			// than estimated, so answer exactly.
		}
	}
	if candSet != nil {
		cands = make([]uint32, 0, len(candSet))
		for slot := range candSet {
			cands = append(cands, slot)
		}
	}
	c.exactSearches.Add(1)
	return c.exactDense(d, q, r, cands, accept, better, smaller)
}

func sortScored(out []scored, better func(a, b scored) bool) {
	t := newTopK(len(out), better)
	for _, s := range out {
		t.offer(s)
	}
	copy(out, t.sorted())
}

// exactDense scores every candidate (all slots when cands is nil), in
// parallel across cores for large scans.
func (c *collection) exactDense(d *denseSpace, q []float32, r searchRequest, cands []uint32, accept func(uint32) bool, better func(a, b scored) bool, smaller bool) []scored {
	n := len(c.points)
	if cands != nil {
		n = len(cands)
	}
	workers := runtime.GOMAXPROCS(0)
	if n < 4096 || workers < 2 {
		workers = 1
	}
	parts := make([]*topK, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		t := newTopK(r.limit, better)
		parts[w] = t
		run := func() {
			for i := lo; i < hi; i++ {
				slot := uint32(i)
				if cands != nil {
					slot = cands[i]
				}
				if !accept(slot) {
					continue
				}
				sc := d.score(q, d.row(slot))
				if passes(sc, r.threshold, smaller) {
					t.offer(scored{slot, sc})
				}
			}
		}
		if workers == 1 {
			run()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	wg.Wait()
	if workers == 1 {
		return parts[0].sorted()
	}
	all := newTopK(r.limit, better)
	for _, p := range parts {
		for _, s := range p.h {
			all.offer(s)
		}
	}
	return all.sorted()
}

// searchSparse scores points sharing a dimension with q by dot product,
// with query weights scaled by IDF when the space has the modifier. Caller
// holds c.mu for reading.
func (c *collection) searchSparse(s *sparseSpace, q *sparseVec, r searchRequest) []scored {
	if r.limit <= 0 {
		return nil
	}
	// Scores accumulate in a dense scratch array indexed by slot; touched
	// lists the slots to read back and reset.
	sc := sparseScratchPool.Get().(*sparseScratch)
	defer sparseScratchPool.Put(sc)
	if len(sc.acc) < len(c.points) {
		sc.acc = make([]float32, len(c.points))
		sc.seen = make([]bool, len(c.points))
	}
	touched := sc.touched[:0]
	for i, dim := range q.idx {
		post := s.post[dim]
		if len(post) == 0 {
			continue
		}
		w := q.val[i]
		if s.idf {
			w *= idf(c.live, len(post))
		}
		for slot, v := range post {
			if !sc.seen[slot] {
				sc.seen[slot] = true
				touched = append(touched, slot)
			}
			sc.acc[slot] += w * v
		}
	}
	var allowed map[uint32]bool
	if r.restrict != nil {
		allowed = make(map[uint32]bool, len(r.restrict))
		for _, sl := range r.restrict {
			allowed[sl] = true
		}
	}
	cands := hitHeap{h: make([]scored, 0, len(touched)), less: c.betterFunc(false)}
	for _, slot := range touched {
		score := sc.acc[slot]
		sc.acc[slot], sc.seen[slot] = 0, false
		if allowed != nil && !allowed[slot] || !passes(score, r.threshold, false) {
			continue
		}
		cands.h = append(cands.h, scored{slot, score})
	}
	sc.touched = touched[:0]
	// The filter is the expensive part (payload lookups), so it is checked
	// lazily, best candidate first, until the limit is reached: a broad
	// filter costs about limit checks instead of one per matching point.
	accept := c.acceptFunc(func(sl uint32) bool { return s.vecs[sl] != nil }, &r)
	h := &cands
	heap.Init(h)
	out := make([]scored, 0, min(r.limit, len(cands.h)))
	for len(out) < r.limit && h.Len() > 0 {
		best := heap.Pop(h).(scored)
		if accept(best.slot) {
			out = append(out, best)
		}
	}
	return out
}

// sparseScratch is the per-search accumulator of searchSparse, pooled so a
// search allocates nothing proportional to the collection.
type sparseScratch struct {
	acc     []float32
	seen    []bool
	touched []uint32
}

var sparseScratchPool = sync.Pool{New: func() any { return new(sparseScratch) }}

// indexCandidates returns the slots that can match filter according to a
// payload index on one of its top-level must conditions (the smallest such
// set), or nil when no index applies. The filter is still evaluated on each
// candidate. Caller holds c.mu.
func (c *collection) indexCandidates(f *qdrant.Filter) map[uint32]struct{} {
	if f == nil || len(c.indexes) == 0 {
		return nil
	}
	var best map[uint32]struct{}
	found := false
	for _, cond := range f.GetMust() {
		fc := cond.GetField()
		if fc == nil || fc.GetMatch() == nil {
			continue
		}
		fi := c.indexes[fc.GetKey()]
		if fi == nil {
			continue
		}
		var set map[uint32]struct{}
		ok := true
		switch m := fc.GetMatch().GetMatchValue().(type) {
		case *qdrant.Match_Keyword:
			ok = fi.typ == qdrant.FieldType_FieldTypeKeyword
			set = fi.kw[m.Keyword]
		case *qdrant.Match_Integer:
			ok = fi.typ == qdrant.FieldType_FieldTypeInteger
			set = fi.ints[m.Integer]
		case *qdrant.Match_Keywords:
			ok = fi.typ == qdrant.FieldType_FieldTypeKeyword
			set = map[uint32]struct{}{}
			for _, k := range m.Keywords.GetStrings() {
				for s := range fi.kw[k] {
					set[s] = struct{}{}
				}
			}
		case *qdrant.Match_Integers:
			ok = fi.typ == qdrant.FieldType_FieldTypeInteger
			set = map[uint32]struct{}{}
			for _, k := range m.Integers.GetIntegers() {
				for s := range fi.ints[k] {
					set[s] = struct{}{}
				}
			}
		default:
			ok = false
		}
		if !ok {
			continue
		}
		if !found || len(set) < len(best) {
			best, found = set, true
		}
	}
	if !found {
		return nil
	}
	if best == nil {
		best = map[uint32]struct{}{} // an indexed value nobody has
	}
	return best
}

// estimateMatches estimates how many of the n points match pred by sampling.
// Caller holds c.mu.
func (c *collection) estimateMatches(pred predicate, n int) int {
	const samples = 512
	if len(c.points) == 0 {
		return 0
	}
	hit, tried := 0, 0
	rng := rand.New(rand.NewPCG(uint64(len(c.points)), uint64(n)))
	for i := 0; i < samples*4 && tried < samples; i++ {
		p := &c.points[rng.IntN(len(c.points))]
		if !p.live {
			continue
		}
		tried++
		if pred(p.id, p.payload) {
			hit++
		}
	}
	if tried == 0 {
		return n
	}
	return (hit*n + tried - 1) / tried
}
