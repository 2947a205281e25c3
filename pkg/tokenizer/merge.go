package tokenizer

import "slices"

// symbol is one node of the doubly linked list that BPE merges work on: a
// byte range of the text being encoded. A merged-away symbol has n == 0.
type symbol struct {
	start, n   int
	prev, next int
}

// bigram is a candidate merge of two adjacent symbols. For SentencePiece the
// priority is the merged token's score (higher first); for GPT-2 it is the
// negated merge rank (lower rank first). Ties go to the leftmost pair.
type bigram struct {
	priority    float64
	left, right int
	size        int
}

// bigramQueue is a binary max-heap of bigrams (typed, so that pushes do
// not allocate as container/heap's interface values would).
type bigramQueue []bigram

func (q bigramQueue) before(i, j int) bool {
	if q[i].priority != q[j].priority {
		return q[i].priority > q[j].priority
	}
	return q[i].left < q[j].left
}

func (q *bigramQueue) push(b bigram) {
	*q = append(*q, b)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.before(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *bigramQueue) pop() bigram {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, best := 2*i+1, i
		if l < n && h.before(l, best) {
			best = l
		}
		if r := l + 1; r < n && h.before(r, best) {
			best = r
		}
		if best == i {
			break
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
	*q = h
	return top
}

// mergeSymbols splits text into symbols at the given boundaries (byte offsets
// of each symbol's start) and merges adjacent pairs while pairPriority
// accepts them, best first. pairPriority gets the merged text and the length
// of its left part. It returns the surviving symbols in order.
func mergeSymbols(text string, starts []int, pairPriority func(merged string, split int) (float64, bool)) []symbol {
	var sc mergeScratch
	return sc.merge(text, starts, pairPriority)
}

// mergeScratch keeps mergeSymbols' buffers between calls (one per word in
// byte-level BPE). The returned symbols alias it until the next call.
type mergeScratch struct {
	syms, out []symbol
	q         bigramQueue
}

func (sc *mergeScratch) merge(text string, starts []int, pairPriority func(merged string, split int) (float64, bool)) []symbol {
	syms := slices.Grow(sc.syms[:0], len(starts))[:len(starts)]
	for i, s := range starts {
		end := len(text)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		syms[i] = symbol{start: s, n: end - s, prev: i - 1, next: i + 1}
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	q := slices.Grow(sc.q[:0], len(syms))
	try := func(l, r int) {
		if l < 0 || r < 0 || r >= len(syms) {
			return
		}
		size := syms[l].n + syms[r].n
		if p, ok := pairPriority(text[syms[l].start:syms[l].start+size], syms[l].n); ok {
			q.push(bigram{priority: p, left: l, right: r, size: size})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for len(q) > 0 {
		bg := q.pop()
		l, r := &syms[bg.left], &syms[bg.right]
		// Skip candidates made stale by an earlier merge.
		if l.n == 0 || r.n == 0 || l.next != bg.right || l.n+r.n != bg.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = bg.left
		}
		try(l.prev, bg.left)
		try(bg.left, l.next)
	}
	out := slices.Grow(sc.out[:0], len(syms))
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		out = append(out, syms[i])
	}
	sc.syms, sc.q, sc.out = syms, q, out
	return out
}
