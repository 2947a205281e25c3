package hnsw

import (
	"cmp"
	"slices"
)

// item is a node and its distance to the current query.
type item struct {
	dist float32
	id   uint32
}

// drop is a level-0 link to id that pruning removed; via is the kept
// neighbour closest to id, at distance dist.
type drop struct {
	via, id uint32
	dist    float32
}

// searcher holds one search's scratch space; pooled to keep searches free of
// allocations.
type searcher struct {
	visited []uint16
	tag     uint16
	cand    minHeap
	res     maxHeap
	eps     []item
	sorted  []item
	pick    []item
	conn    [maxLevel][]item // the neighbours an insert chose, per level
	drops   []drop           // level-0 links that pruning removed, see rehome
	moves   []drop
	old     []uint32 // a list's ids before keep rewrites it
	prune   []item
	batch   []uint32
	// qbuf and cbuf hold decoded vectors of a quantized index: the node
	// being inserted, and the candidate being compared.
	qbuf, cbuf []float32
}

func (ix *Index) getSearcher() *searcher {
	if s, ok := ix.searchers.Get().(*searcher); ok {
		return s
	}
	return &searcher{}
}

// startVisit begins a new visited set for ids below capacity.
func (s *searcher) startVisit(capacity int) {
	if len(s.visited) < capacity {
		s.visited = make([]uint16, capacity)
		s.tag = 0
	}
	s.tag++
	if s.tag == 0 {
		clear(s.visited)
		s.tag = 1
	}
}

// visit marks id and reports whether it was already marked.
func (s *searcher) visit(id uint32) bool {
	if int(id) >= len(s.visited) {
		// The index grew during this search.
		v := make([]uint16, (int(id)|segMask)+1)
		copy(v, s.visited)
		s.visited = v
	}
	if s.visited[id] == s.tag {
		return true
	}
	s.visited[id] = s.tag
	return false
}

// minHeap is a binary heap of items, closest on top.
type minHeap struct{ a []item }

func (h *minHeap) len() int  { return len(h.a) }
func (h *minHeap) reset()    { h.a = h.a[:0] }
func (h *minHeap) top() item { return h.a[0] }
func (h *minHeap) push(x item) {
	h.a = append(h.a, x)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h.a[p].dist <= h.a[i].dist {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *minHeap) pop() item {
	x := h.a[0]
	n := len(h.a) - 1
	h.a[0] = h.a[n]
	h.a = h.a[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.a[r].dist < h.a[l].dist {
			c = r
		}
		if h.a[i].dist <= h.a[c].dist {
			break
		}
		h.a[i], h.a[c] = h.a[c], h.a[i]
		i = c
	}
	return x
}

// maxHeap is a binary heap of items, farthest on top.
type maxHeap struct{ a []item }

func (h *maxHeap) len() int  { return len(h.a) }
func (h *maxHeap) reset()    { h.a = h.a[:0] }
func (h *maxHeap) top() item { return h.a[0] }
func (h *maxHeap) push(x item) {
	h.a = append(h.a, x)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h.a[p].dist >= h.a[i].dist {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *maxHeap) pop() item {
	x := h.a[0]
	n := len(h.a) - 1
	h.a[0] = h.a[n]
	h.a = h.a[:n]
	h.down(0)
	return x
}

func (h *maxHeap) replaceTop(x item) {
	h.a[0] = x
	h.down(0)
}

func (h *maxHeap) down(i int) {
	n := len(h.a)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.a[r].dist > h.a[l].dist {
			c = r
		}
		if h.a[i].dist >= h.a[c].dist {
			break
		}
		h.a[i], h.a[c] = h.a[c], h.a[i]
		i = c
	}
}

// drainSorted empties the heap into dst, closest first.
func (h *maxHeap) drainSorted(dst []item) []item {
	n := h.len()
	for range n {
		dst = append(dst, item{})
	}
	for i := len(dst) - 1; i >= len(dst)-n; i-- {
		dst[i] = h.pop()
	}
	return dst
}

func sortItems(a []item) {
	slices.SortFunc(a, func(x, y item) int { return cmp.Compare(x.dist, y.dist) })
}
