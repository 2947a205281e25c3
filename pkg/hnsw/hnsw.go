// Package hnsw is an in-memory approximate nearest-neighbour index over dense
// float32 vectors: a Hierarchical Navigable Small World graph (Malkov and
// Yashunin, 2016) with the neighbour-selection heuristic of hnswlib, filtered
// search, tombstone deletes and a binary serialisation.
//
// The caller assigns ids: small dense uint32 values (0, 1, 2, …), typically
// the position of a point in the caller's own table. The index stores the
// vectors itself in contiguous per-segment slabs of 1024 vectors.
//
// Scores follow Qdrant's conventions. For Dot and Cosine the score is the dot
// product, higher is better (Cosine expects vectors that the caller has
// normalised; the index does not normalise). For L2 the score is the Euclidean
// distance (not squared), lower is better. Results are always sorted best
// first.
//
// All methods are safe for concurrent use: any number of Search calls may run
// while Add and Delete calls run. Searches take no locks; adds lock only the
// nodes whose neighbour lists they change.
//
// Example:
//
//	ix, err := hnsw.New(384, hnsw.Cosine, hnsw.M(16), hnsw.EfConstruction(200))
//	if err != nil {
//		return err
//	}
//	for i, v := range vectors { // each v normalised, len 384
//		if err := ix.Add(uint32(i), v); err != nil {
//			return err
//		}
//	}
//	ix.Delete(7)                      // 7 never appears in results again
//	top := ix.Search(query, 10, 0, nil) // ef 0: the index's EfSearch
//	even := ix.Search(query, 10, 128, func(id uint32) bool { return id%2 == 0 })
//	_, _ = top, even
//
// Filtered search: the allow predicate is called for nodes the search reaches;
// only nodes it accepts enter the results, but the search walks through the
// others, and it keeps walking until it holds ef accepted nodes or has
// exhausted what it can reach. Recall therefore stays high for any filter,
// but the work grows as the filter gets more selective: at selectivity s the
// search visits roughly ef/s nodes. Below about FilterExactThreshold of the
// index, an exact scan of the accepted points (see SearchExact) is both
// faster and exact; callers that can count the accepted points should switch.
//
// Deleted points stay in the graph as waypoints (as in hnswlib) so the graph
// stays connected; they never appear in results. Their memory comes back
// only by building a new index from the live points, which callers should do
// when Stats().Deleted grows past a large fraction of Stats().Len.
package hnsw

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tributary-rag/tributary/pkg/vecmath"
)

// FilterExactThreshold is the fraction of live points below which a filtered
// query is cheaper as an exact scan of the accepted points than as a filtered
// graph search. Measured on 100k × 384 clustered vectors (M 16, ef 64, CPU
// time per query): at 5% the graph walk cost 4.8 ms and the scan 2.6 ms, at
// 10% 2.2 ms against 5.2 ms; below the crossover the scan is also exact. See
// bench/sections/ann.md.
const FilterExactThreshold = 0.07

// MaxID is the largest id Add accepts. Ids should be dense: memory is
// allocated for every segment of 1024 ids that holds at least one id, and
// each search allocates one visited-marker per possible id.
const MaxID = 1<<31 - 1

// noID is an id no node has.
const noID = ^uint32(0)

// Metric selects the similarity the index ranks by.
type Metric uint8

const (
	// Cosine ranks by dot product of vectors the caller has normalised to unit
	// length; the score is the cosine similarity, higher is better.
	Cosine Metric = iota + 1
	// Dot ranks by the raw dot product, higher is better.
	Dot
	// L2 ranks by Euclidean distance, lower is better; the score is the
	// distance itself (not squared).
	L2
)

// String returns the metric's name.
func (m Metric) String() string {
	switch m {
	case Cosine:
		return "cosine"
	case Dot:
		return "dot"
	case L2:
		return "l2"
	default:
		return fmt.Sprintf("metric(%d)", uint8(m))
	}
}

// Result is one search hit.
type Result struct {
	// ID is the id given to Add.
	ID uint32
	// Score is the dot product for Dot and Cosine (higher is better) and the
	// Euclidean distance for L2 (lower is better).
	Score float32
}

// Errors returned by Add and New.
var (
	ErrDimension = errors.New("vector has the wrong dimension")
	ErrExists    = errors.New("id already added")
	ErrIDRange   = errors.New("id out of range")
)

// Option configures an Index.
type Option func(*config) error

type config struct {
	m        int
	efConstr int
	efSearch int
	seed     uint64
	quantile float32 // > 0: int8 scalar quantization (see ScalarInt8)
}

// M sets the number of neighbours each node keeps on the upper layers; the
// bottom layer keeps 2*M. Default 16; allowed 2..128.
func M(m int) Option {
	return func(c *config) error {
		if m < 2 || m > 128 {
			return fmt.Errorf("m %d outside 2..128", m)
		}
		c.m = m
		return nil
	}
}

// EfConstruction sets the candidate-list size used while inserting. Larger
// builds slower and gives a better graph. Default 200.
func EfConstruction(ef int) Option {
	return func(c *config) error {
		if ef < 1 || ef > 1<<16 {
			return fmt.Errorf("ef construction %d outside 1..65536", ef)
		}
		c.efConstr = ef
		return nil
	}
}

// EfSearch sets the default candidate-list size of Search (used when its ef
// argument is 0). Larger is slower and more accurate. Default 100.
func EfSearch(ef int) Option {
	return func(c *config) error {
		if ef < 1 || ef > 1<<16 {
			return fmt.Errorf("ef search %d outside 1..65536", ef)
		}
		c.efSearch = ef
		return nil
	}
}

// ScalarInt8 stores each vector as int8 codes with one float32 scale (and,
// for L2, its squared norm) instead of float32 components: dim+4 bytes
// instead of 4·dim, a quarter for 384 dimensions. The scale maps the
// quantile-th largest |component| of the vector to 127 (quantile in
// (0.5, 1]; larger components saturate). Distances are computed between
// the float32 query and the codes, so results are approximate: rescore
// the best candidates with the original vectors (the vector store does).
func ScalarInt8(quantile float32) Option {
	return func(c *config) error {
		if !(quantile > 0.5 && quantile <= 1) {
			return fmt.Errorf("quantile %v outside (0.5, 1]", quantile)
		}
		c.quantile = quantile
		return nil
	}
}

// Seed sets the seed of the random level generator. Single-threaded builds
// with the same seed and insertion order produce the same graph.
func Seed(seed uint64) Option {
	return func(c *config) error {
		c.seed = seed
		return nil
	}
}

const (
	segBits = 10
	segSize = 1 << segBits
	segMask = segSize - 1

	maxLevel = 16

	// node states, a bit set in segment.state
	stateClaimed = 1 // an Add owns the id
	statePresent = 2 // the vector is written
	stateDeleted = 4
)

// segment holds segSize consecutive ids.
type segment struct {
	vecs  []float32       // segSize*dim; nil when quantized
	codes []int8          // segSize*dim when quantized
	scale []float32       // per node when quantized
	sqn   []float32       // per node when quantized with L2: |decoded|²
	links []uint32        // level 0: segSize*(m0+1), [count, ids...] per node
	upper [][]uint32      // levels 1..L per node: L*(m+1) words, [count, ids...] per level
	level []uint8         // top level of each node
	state []atomic.Uint32 // stateClaimed|statePresent|stateDeleted
	indeg []atomic.Int32  // level-0 in-links, see rehome
	mu    []sync.Mutex    // guards writers of the node's neighbour lists
}

// Index is an HNSW graph. Create it with New; the zero value is not usable.
type Index struct {
	dim      int
	metric   Metric
	m, m0    int
	efConstr int
	efSearch int
	ml       float64
	dist     func(a, b []float32) float32 // smaller is closer
	quantile float32                      // > 0: vectors are int8 codes

	segs   atomic.Pointer[[]*segment]
	growMu sync.Mutex

	// entry packs the entry point: bit 63 set when valid, level in bits
	// 32..39, id in bits 0..31. Changed only under entryMu.
	entry   atomic.Uint64
	entryMu sync.Mutex

	rngMu sync.Mutex
	rng   *rand.Rand
	seed  uint64

	live    atomic.Int64
	deleted atomic.Int64

	searchers sync.Pool

	noPrefetch bool // for benchmarks comparing with and without prefetching
}

// New returns an empty index for vectors of dim dimensions.
func New(dim int, metric Metric, opts ...Option) (*Index, error) {
	if dim < 1 || dim > 1<<16 {
		return nil, fmt.Errorf("dimension %d outside 1..65536", dim)
	}
	cfg := config{m: 16, efConstr: 200, efSearch: 100, seed: 0x5eed}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("hnsw option: %w", err)
		}
	}
	ix := &Index{
		dim:      dim,
		metric:   metric,
		m:        cfg.m,
		m0:       2 * cfg.m,
		efConstr: cfg.efConstr,
		efSearch: cfg.efSearch,
		ml:       1 / math.Log(float64(cfg.m)),
		seed:     cfg.seed,
		quantile: cfg.quantile,
		rng:      rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
	}
	switch metric {
	case Cosine, Dot:
		ix.dist = negDot
	case L2:
		ix.dist = vecmath.L2Sq
	default:
		return nil, fmt.Errorf("unknown metric %d", metric)
	}
	empty := []*segment{}
	ix.segs.Store(&empty)
	return ix, nil
}

func negDot(a, b []float32) float32 { return -vecmath.Dot(a, b) }

// score converts an internal distance to the public score.
func (ix *Index) score(d float32) float32 {
	if ix.metric == L2 {
		return float32(math.Sqrt(float64(max(d, 0))))
	}
	return -d
}

// Dim returns the vector dimension.
func (ix *Index) Dim() int { return ix.dim }

// Metric returns the metric the index ranks by.
func (ix *Index) Metric() Metric { return ix.metric }

// Len returns the number of live (added and not deleted) points.
func (ix *Index) Len() int { return int(ix.live.Load()) }

// Stats describes an index's size.
type Stats struct {
	Len      int   // live points
	Deleted  int   // tombstoned points still in the graph
	MaxLevel int   // top layer of the graph, -1 when empty
	Bytes    int64 // memory held by vectors, links and per-node state
}

// Stats returns the index's current size.
func (ix *Index) Stats() Stats {
	st := Stats{Len: ix.Len(), Deleted: int(ix.deleted.Load()), MaxLevel: -1}
	if e := ix.entry.Load(); e != 0 {
		_, st.MaxLevel = unpackEntry(e)
	}
	for _, s := range *ix.segs.Load() {
		if s == nil {
			continue
		}
		st.Bytes += int64(4*len(s.vecs)) + int64(len(s.codes)) + int64(4*len(s.scale)+4*len(s.sqn)) + int64(4*len(s.links)) + int64(24*len(s.upper)) +
			int64(len(s.level)) + int64(4*len(s.state)) + int64(8*len(s.mu))
		for i := range s.upper {
			if s.state[i].Load()&statePresent != 0 {
				st.Bytes += int64(4 * len(s.upper[i]))
			}
		}
	}
	return st
}

func packEntry(id uint32, level int) uint64 { return 1<<63 | uint64(level)<<32 | uint64(id) }

func unpackEntry(e uint64) (uint32, int) { return uint32(e), int(e>>32) & 0xff }

func (ix *Index) segment(id uint32) *segment {
	t := *ix.segs.Load()
	i := int(id >> segBits)
	if i >= len(t) {
		return nil
	}
	return t[i]
}

// vec returns the stored vector of a present id; not for quantized indexes.
func (ix *Index) vec(id uint32) []float32 {
	s := (*ix.segs.Load())[id>>segBits]
	o := int(id&segMask) * ix.dim
	return s.vecs[o : o+ix.dim : o+ix.dim]
}

// Quantized reports whether vectors are stored as int8 codes.
func (ix *Index) Quantized() bool { return ix.quantile > 0 }

// stored returns the vector of a present id: the stored one, or for a
// quantized index the decoded codes written into buf (grown as needed).
func (ix *Index) stored(id uint32, buf *[]float32) []float32 {
	if ix.quantile == 0 {
		return ix.vec(id)
	}
	s := (*ix.segs.Load())[id>>segBits]
	off := int(id & segMask)
	c := s.codes[off*ix.dim : (off+1)*ix.dim]
	if cap(*buf) < ix.dim {
		*buf = make([]float32, ix.dim)
	}
	v := (*buf)[:ix.dim]
	sc := s.scale[off]
	for i, x := range c {
		v[i] = sc * float32(x)
	}
	return v
}

// distTo returns the distance from query q to the stored vector of id.
func (ix *Index) distTo(q []float32, id uint32) float32 {
	if ix.quantile == 0 {
		return ix.dist(q, ix.vec(id))
	}
	s := (*ix.segs.Load())[id>>segBits]
	off := int(id & segMask)
	d := s.scale[off] * vecmath.DotI8(q, s.codes[off*ix.dim:(off+1)*ix.dim])
	if ix.metric == L2 {
		return vecmath.Dot(q, q) - 2*d + s.sqn[off]
	}
	return -d
}

// prefetch starts loading the stored vector of id into cache.
func (ix *Index) prefetch(id uint32) {
	if ix.quantile == 0 {
		vecmath.Prefetch(ix.vec(id))
		return
	}
	s := (*ix.segs.Load())[id>>segBits]
	off := int(id&segMask) * ix.dim
	vecmath.PrefetchI8(s.codes[off : off+ix.dim])
}

// put stores vec for the node at off of seg, quantizing it when the index
// is quantized with the given quantile (Load passes 1: its vectors were
// decoded from codes, and quantile 1 reproduces those codes).
func (ix *Index) put(seg *segment, off int, vec []float32, quantile float32) {
	if ix.quantile == 0 {
		copy(seg.vecs[off*ix.dim:(off+1)*ix.dim], vec)
		return
	}
	c := seg.codes[off*ix.dim : (off+1)*ix.dim]
	sc := vecmath.QuantizeI8(vec, c, quantile)
	seg.scale[off] = sc
	if seg.sqn != nil {
		var n float32
		for _, x := range c {
			n += sc * float32(x) * sc * float32(x)
		}
		seg.sqn[off] = n
	}
}

// links returns the [count, ids...] list of id at level; id must have that
// level.
func (ix *Index) links(id uint32, level int) []uint32 {
	s := (*ix.segs.Load())[id>>segBits]
	o := int(id & segMask)
	if level == 0 {
		w := ix.m0 + 1
		return s.links[o*w : (o+1)*w : (o+1)*w]
	}
	w := ix.m + 1
	u := s.upper[o]
	return u[(level-1)*w : level*w : level*w]
}

func (ix *Index) ensureSegment(id uint32) *segment {
	if s := ix.segment(id); s != nil {
		return s
	}
	ix.growMu.Lock()
	defer ix.growMu.Unlock()
	old := *ix.segs.Load()
	i := int(id >> segBits)
	if i < len(old) && old[i] != nil {
		return old[i]
	}
	t := make([]*segment, max(len(old), i+1))
	copy(t, old)
	seg := &segment{
		links: make([]uint32, segSize*(ix.m0+1)),
		upper: make([][]uint32, segSize),
		level: make([]uint8, segSize),
		state: make([]atomic.Uint32, segSize),
		indeg: make([]atomic.Int32, segSize),
		mu:    make([]sync.Mutex, segSize),
	}
	if ix.quantile > 0 {
		seg.codes = make([]int8, segSize*ix.dim)
		seg.scale = make([]float32, segSize)
		if ix.metric == L2 {
			seg.sqn = make([]float32, segSize)
		}
	} else {
		seg.vecs = make([]float32, segSize*ix.dim)
	}
	t[i] = seg
	ix.segs.Store(&t)
	return t[i]
}

func (ix *Index) randomLevel() int {
	ix.rngMu.Lock()
	u := ix.rng.Float64()
	ix.rngMu.Unlock()
	l := int(-math.Log(1-u) * ix.ml)
	return min(l, maxLevel-1)
}

// Add inserts vec under id. The vector is copied. Add returns ErrExists if
// the id was added before (even if deleted since: give a re-inserted point a
// new id), ErrDimension if len(vec) is not the index's dimension and
// ErrIDRange if id exceeds MaxID.
func (ix *Index) Add(id uint32, vec []float32) error {
	if len(vec) != ix.dim {
		return fmt.Errorf("add %d: %w: got %d, want %d", id, ErrDimension, len(vec), ix.dim)
	}
	if id > MaxID {
		return fmt.Errorf("add %d: %w", id, ErrIDRange)
	}
	seg := ix.ensureSegment(id)
	off := int(id & segMask)
	if !seg.state[off].CompareAndSwap(0, stateClaimed) {
		return fmt.Errorf("add %d: %w", id, ErrExists)
	}
	level := ix.randomLevel()
	ix.put(seg, off, vec, ix.quantile)
	seg.level[off] = uint8(level)
	if level > 0 {
		seg.upper[off] = make([]uint32, level*(ix.m+1))
	}
	seg.state[off].Or(statePresent)
	ix.insert(id, level)
	ix.live.Add(1)
	return nil
}

// insert links a present node into the graph.
func (ix *Index) insert(id uint32, level int) {
	e := ix.entry.Load()
	if e == 0 {
		ix.entryMu.Lock()
		if ix.entry.Load() == 0 {
			ix.entry.Store(packEntry(id, level))
			ix.entryMu.Unlock()
			return
		}
		ix.entryMu.Unlock()
		e = ix.entry.Load()
	}
	// A node that raises the graph's top level holds entryMu for its whole
	// insertion, as in hnswlib, so two such nodes cannot race.
	locked := false
	if _, top := unpackEntry(e); level > top {
		ix.entryMu.Lock()
		locked = true
		e = ix.entry.Load()
		if _, top := unpackEntry(e); level <= top {
			ix.entryMu.Unlock()
			locked = false
		}
	}
	epID, top := unpackEntry(e)
	s := ix.getSearcher()
	defer ix.searchers.Put(s)
	q := ix.stored(id, &s.qbuf)

	cur, curDist := ix.greedy(q, epID, top, level)
	s.eps = append(s.eps[:0], item{curDist, cur})
	// Choose the neighbours of every level first, then write the node's own
	// lists, and only then link to it. A node linked at an upper level before
	// its lower lists exist would be a dead end for a concurrent insert that
	// descends through it: that insert would link only to it, and the node's
	// pruning could then drop the insert's only way in.
	lmax := min(level, top)
	for l := lmax; l >= 0; l-- {
		ix.searchLayer(s, q, s.eps, ix.efConstr, l, nil, false)
		s.sorted = s.res.drainSorted(s.sorted[:0])
		s.eps = append(s.eps[:0], s.sorted...)
		sel := ix.selectNeighbors(s, s.sorted, ix.m, id)
		// sel aliases s.pick; copy it since setOwn and connect reuse it.
		s.conn[l] = append(s.conn[l][:0], sel...)
	}
	s.drops = s.drops[:0]
	for l := 0; l <= lmax; l++ {
		ix.setOwn(s, id, l, s.conn[l])
	}
	for l := 0; l <= lmax; l++ {
		for _, c := range s.conn[l] {
			ix.connect(s, c.id, id, c.dist, l, false)
		}
	}
	ix.rehome(s)
	if locked {
		if _, top := unpackEntry(ix.entry.Load()); level > top {
			ix.entry.Store(packEntry(id, level))
		}
		ix.entryMu.Unlock()
	}
}

// greedy descends from the entry point through levels top..stop+1, moving to
// the closest neighbour while that improves, and returns the closest node
// found and its distance.
func (ix *Index) greedy(q []float32, cur uint32, top, stop int) (uint32, float32) {
	curDist := ix.distTo(q, cur)
	for l := top; l > stop; l-- {
		for changed := true; changed; {
			changed = false
			list := ix.links(cur, l)
			n := atomic.LoadUint32(&list[0])
			for i := 1; i <= int(n); i++ {
				nb := atomic.LoadUint32(&list[i])
				if d := ix.distTo(q, nb); d < curDist {
					cur, curDist, changed = nb, d, true
				}
			}
		}
	}
	return cur, curDist
}

// selectNeighbors applies hnswlib's heuristic to candidates sorted closest
// first: keep a candidate only if it is closer to the base than to every
// candidate already kept, so links spread in different directions. It returns
// at most m items in s.pick, never including self.
func (ix *Index) selectNeighbors(s *searcher, cands []item, m int, self uint32) []item {
	s.pick = s.pick[:0]
	if len(cands) <= m {
		for _, c := range cands {
			if c.id != self {
				s.pick = append(s.pick, c)
			}
		}
		return s.pick
	}
	for _, c := range cands {
		if len(s.pick) >= m {
			break
		}
		if c.id == self {
			continue
		}
		cv := ix.stored(c.id, &s.cbuf)
		good := true
		for _, p := range s.pick {
			if ix.distTo(cv, p.id) < c.dist {
				good = false
				break
			}
		}
		if good {
			s.pick = append(s.pick, c)
		}
	}
	return s.pick
}

// setOwn writes a new node's neighbour list at level. A concurrent insert may
// already have linked to the node there (it can reach the node through the
// level above); those links are merged in, not overwritten.
func (ix *Index) setOwn(s *searcher, id uint32, level int, sel []item) {
	mmax := ix.m
	if level == 0 {
		mmax = ix.m0
	}
	seg := ix.segment(id)
	off := int(id & segMask)
	seg.mu[off].Lock()
	defer seg.mu[off].Unlock()
	list := ix.links(id, level)
	n := int(atomic.LoadUint32(&list[0]))
	s.prune = append(s.prune[:0], sel...)
	if n > 0 {
		v := ix.stored(id, &s.cbuf)
	existing:
		for i := 1; i <= n; i++ {
			nb := atomic.LoadUint32(&list[i])
			for _, c := range sel {
				if c.id == nb {
					continue existing
				}
			}
			s.prune = append(s.prune, item{ix.distTo(v, nb), nb})
		}
		sortItems(s.prune)
	}
	ix.keep(s, id, list, s.prune, mmax, level, noID)
}

// connect adds a link from node to newID at level, pruning node's list with
// the heuristic when it is full; force keeps the new link whatever the
// heuristic says.
func (ix *Index) connect(s *searcher, node, newID uint32, d float32, level int, force bool) {
	mmax := ix.m
	if level == 0 {
		mmax = ix.m0
	}
	seg := ix.segment(node)
	off := int(node & segMask)
	seg.mu[off].Lock()
	defer seg.mu[off].Unlock()
	list := ix.links(node, level)
	n := int(atomic.LoadUint32(&list[0]))
	for i := 1; i <= n; i++ {
		if atomic.LoadUint32(&list[i]) == newID {
			return
		}
	}
	if n < mmax {
		atomic.StoreUint32(&list[1+n], newID)
		atomic.StoreUint32(&list[0], uint32(n+1))
		if level == 0 {
			ix.indeg(newID).Add(1)
		}
		return
	}
	nv := ix.stored(node, &s.cbuf)
	s.prune = append(s.prune[:0], item{d, newID})
	for i := 1; i <= n; i++ {
		id := atomic.LoadUint32(&list[i])
		s.prune = append(s.prune, item{ix.distTo(nv, id), id})
	}
	sortItems(s.prune)
	must := noID
	if force {
		must = newID
	}
	ix.keep(s, node, list, s.prune, mmax, level, must)
}

// keep writes node's list at level: cands (closest first), or the
// heuristic's choice of them when more than mmax, in which must (unless
// noID) replaces the farthest choice if the heuristic left it out. On level
// 0 it keeps each node's in-link count and notes in s.drops every candidate
// left without an in-link, with the kept neighbour closest to it.
func (ix *Index) keep(s *searcher, node uint32, list []uint32, cands []item, mmax, level int, must uint32) {
	sel := cands
	if len(cands) > mmax {
		sel = ix.selectNeighbors(s, cands, mmax, node)
		if i := slices.IndexFunc(cands, func(c item) bool { return c.id == must }); i >= 0 &&
			!slices.ContainsFunc(sel, func(k item) bool { return k.id == must }) {
			if len(sel) < mmax {
				sel = append(sel, cands[i])
			} else {
				sel[len(sel)-1] = cands[i]
			}
		}
	}
	s.old = s.old[:0]
	if level == 0 {
		n := atomic.LoadUint32(&list[0])
		for i := uint32(1); i <= n; i++ {
			s.old = append(s.old, atomic.LoadUint32(&list[i]))
		}
	}
	for i, c := range sel {
		atomic.StoreUint32(&list[1+i], c.id)
	}
	atomic.StoreUint32(&list[0], uint32(len(sel)))
	if level != 0 {
		return
	}
	kept := func(id uint32) bool { return slices.ContainsFunc(sel, func(k item) bool { return k.id == id }) }
	for _, c := range sel {
		if !slices.Contains(s.old, c.id) {
			ix.indeg(c.id).Add(1)
		}
	}
	for _, id := range s.old {
		if !kept(id) {
			ix.indeg(id).Add(-1)
		}
	}
	if len(sel) == len(cands) || len(sel) == 0 {
		return
	}
	for _, c := range cands {
		if c.id == node || kept(c.id) || ix.indeg(c.id).Load() > 0 {
			continue
		}
		cv := ix.stored(c.id, &s.cbuf)
		best := item{float32(math.Inf(1)), sel[0].id}
		for _, k := range sel {
			if d := ix.distTo(cv, k.id); d < best.dist {
				best = item{d, k.id}
			}
		}
		s.drops = append(s.drops, drop{via: best.id, id: c.id, dist: best.dist})
	}
}

// indeg is the number of level-0 lists that link to id.
func (ix *Index) indeg(id uint32) *atomic.Int32 {
	return &(*ix.segs.Load())[id>>segBits].indeg[id&segMask]
}

// rehome links each node that pruning left without a level-0 in-link
// (s.drops) from the kept neighbour closest to it, so the path through the
// pruned node survives; the link is kept even where the heuristic would drop
// it. Otherwise the node is unreachable: concurrent inserts that do not see
// each other make this happen, and so does a small M. What these links
// displace is rehomed too, for a few rounds.
func (ix *Index) rehome(s *searcher) {
	for round := 0; round < 4 && len(s.drops) > 0; round++ {
		s.moves = append(s.moves[:0], s.drops...)
		s.drops = s.drops[:0]
		for _, r := range s.moves {
			ix.connect(s, r.via, r.id, r.dist, 0, true)
		}
	}
	s.drops = s.drops[:0]
}

// Delete tombstones id: it stays in the graph as a waypoint but never appears
// in results again. Delete reports whether id was present and not yet
// deleted.
func (ix *Index) Delete(id uint32) bool {
	seg := ix.segment(id)
	if seg == nil {
		return false
	}
	st := &seg.state[id&segMask]
	for {
		old := st.Load()
		if old&statePresent == 0 || old&stateDeleted != 0 {
			return false
		}
		if st.CompareAndSwap(old, old|stateDeleted) {
			ix.live.Add(-1)
			ix.deleted.Add(1)
			return true
		}
	}
}

// Contains reports whether id is present and not deleted.
func (ix *Index) Contains(id uint32) bool {
	seg := ix.segment(id)
	if seg == nil {
		return false
	}
	return seg.state[id&segMask].Load()&(statePresent|stateDeleted) == statePresent
}

// Vector returns a copy of the vector stored under a live id, or nil.
func (ix *Index) Vector(id uint32) []float32 {
	if !ix.Contains(id) {
		return nil
	}
	var buf []float32
	return append([]float32(nil), ix.stored(id, &buf)...)
}

// eligible reports whether a reached node may enter the results.
func (ix *Index) eligible(id uint32, allow func(uint32) bool) bool {
	if (*ix.segs.Load())[id>>segBits].state[id&segMask].Load()&stateDeleted != 0 {
		return false
	}
	return allow == nil || allow(id)
}

// Search returns up to k live points closest to q, best first, considering
// only ids for which allow returns true (allow nil accepts all). ef is the
// candidate-list size (0 means the index's EfSearch; values below k are
// raised to k). Search returns nil when q has the wrong dimension, k < 1 or
// the index is empty. allow must be safe to call from the searching
// goroutine and must not call back into the index's writers.
func (ix *Index) Search(q []float32, k, ef int, allow func(id uint32) bool) []Result {
	if len(q) != ix.dim || k < 1 {
		return nil
	}
	e := ix.entry.Load()
	if e == 0 {
		return nil
	}
	if ef <= 0 {
		ef = ix.efSearch
	}
	ef = max(ef, k)
	epID, top := unpackEntry(e)
	s := ix.getSearcher()
	defer ix.searchers.Put(s)
	cur, curDist := ix.greedy(q, epID, top, 0)
	s.eps = append(s.eps[:0], item{curDist, cur})
	ix.searchLayer(s, q, s.eps, ef, 0, allow, true)
	for s.res.len() > k {
		s.res.pop()
	}
	out := make([]Result, s.res.len())
	for i := len(out) - 1; i >= 0; i-- {
		it := s.res.pop()
		out[i] = Result{ID: it.id, Score: ix.score(it.dist)}
	}
	return out
}

// SearchExact returns the k live points closest to q among those allow
// accepts, best first, by scanning every stored vector. Use it for small
// indexes and for selective filters (see FilterExactThreshold).
func (ix *Index) SearchExact(q []float32, k int, allow func(id uint32) bool) []Result {
	if len(q) != ix.dim || k < 1 {
		return nil
	}
	var h maxHeap
	for si, seg := range *ix.segs.Load() {
		if seg == nil {
			continue
		}
		base := uint32(si) << segBits
		for off := range seg.state {
			if seg.state[off].Load()&(statePresent|stateDeleted) != statePresent {
				continue
			}
			id := base + uint32(off)
			if allow != nil && !allow(id) {
				continue
			}
			d := ix.distTo(q, id)
			if h.len() < k {
				h.push(item{d, id})
			} else if d < h.top().dist {
				h.replaceTop(item{d, id})
			}
		}
	}
	out := make([]Result, h.len())
	for i := len(out) - 1; i >= 0; i-- {
		it := h.pop()
		out[i] = Result{ID: it.id, Score: ix.score(it.dist)}
	}
	return out
}

// searchLayer runs the HNSW beam search on one level from the entry points
// eps, leaving up to ef results in s.res. With filter set, only eligible
// nodes enter the results while all reached nodes steer the walk.
func (ix *Index) searchLayer(s *searcher, q []float32, eps []item, ef, level int, allow func(uint32) bool, filter bool) {
	s.startVisit(ix.capacity())
	s.cand.reset()
	s.res.reset()
	for _, e := range eps {
		if s.visit(e.id) {
			continue
		}
		s.cand.push(e)
		if !filter || ix.eligible(e.id, allow) {
			s.res.push(e)
			if s.res.len() > ef {
				s.res.pop()
			}
		}
	}
	lower := float32(math.Inf(1))
	if s.res.len() > 0 {
		lower = s.res.top().dist
	}
	for s.cand.len() > 0 {
		c := s.cand.top()
		if c.dist > lower && s.res.len() >= ef {
			break
		}
		s.cand.pop()
		list := ix.links(c.id, level)
		n := int(atomic.LoadUint32(&list[0]))
		// Collect the unvisited neighbours and start loading their vectors
		// before computing any distance: the walk is bound by memory latency.
		s.batch = s.batch[:0]
		for i := 1; i <= n; i++ {
			nb := atomic.LoadUint32(&list[i])
			if !s.visit(nb) {
				s.batch = append(s.batch, nb)
				if !ix.noPrefetch {
					ix.prefetch(nb)
				}
			}
		}
		for _, nb := range s.batch {
			d := ix.distTo(q, nb)
			if s.res.len() < ef || d < lower {
				s.cand.push(item{d, nb})
				if !filter || ix.eligible(nb, allow) {
					s.res.push(item{d, nb})
					if s.res.len() > ef {
						s.res.pop()
					}
					lower = s.res.top().dist
				}
			}
		}
	}
}

func (ix *Index) capacity() int { return len(*ix.segs.Load()) * segSize }
