package llm

import (
	"fmt"
	"math"
)

// kvCache holds one sequence's keys and values: per layer, position-major
// rows of KVHeads*HeadDim floats. It grows as positions are added.
type kvCache struct {
	k, v [][]float32
	n    int // positions filled
}

func newKVCache(layers int) *kvCache {
	return &kvCache{k: make([][]float32, layers), v: make([][]float32, layers)}
}

// ensure makes room for positions 0..pos in every layer.
func (c *kvCache) ensure(pos, kvdim int) {
	need := (pos + 1) * kvdim
	for l := range c.k {
		if cap(c.k[l]) < need {
			nc := max(need, 2*cap(c.k[l]), 64*kvdim)
			k := make([]float32, len(c.k[l]), nc)
			copy(k, c.k[l])
			v := make([]float32, len(c.v[l]), nc)
			copy(v, c.v[l])
			c.k[l], c.v[l] = k, v
		}
		if len(c.k[l]) < need {
			c.k[l] = c.k[l][:need]
			c.v[l] = c.v[l][:need]
		}
	}
}

// batchEntry is one token of a forward step: a sequence's token at a
// position. Logits are computed only for entries with wantLogits.
type batchEntry struct {
	cache      *kvCache
	token      int32
	pos        int
	wantLogits bool
}

type buffers struct {
	x, xb, q, k, v, att, hb, hb2 []float32
	out, logits                  []float32
	queries                      []AttentionQuery
	ops                          []MatMulOp
	swiglu                       func(lo, hi int) // over hb and hb2, bound once
}

// forward runs one step over entries (any mix of sequences and positions;
// entries of one sequence in increasing position order) and returns the
// logits of the entries that asked for them, Vocab floats each, in order.
// The returned slice is reused by the next call.
func (m *Model) forward(entries []batchEntry) ([]float32, error) {
	c := &m.cfg
	n := len(entries)
	dim, qdim, kvdim := c.Dim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	b := &m.buf
	b.x = grow(b.x, n*dim)
	b.xb = grow(b.xb, n*dim)
	b.q = grow(b.q, n*qdim)
	b.k = grow(b.k, n*kvdim)
	b.v = grow(b.v, n*kvdim)
	b.att = grow(b.att, n*qdim)
	b.hb = grow(b.hb, n*c.Hidden)
	b.hb2 = grow(b.hb2, n*c.Hidden)
	for i, e := range entries {
		if e.token < 0 || int(e.token) >= c.Vocab {
			return nil, fmt.Errorf("token %d out of range [0,%d)", e.token, c.Vocab)
		}
		if e.pos < 0 || e.pos >= math.MaxInt32 {
			return nil, fmt.Errorf("position %d out of range", e.pos)
		}
		m.embed.DequantizeRow(int(e.token), b.x[i*dim:(i+1)*dim])
		e.cache.ensure(e.pos, kvdim)
	}
	be := m.backend
	for li := range m.layers {
		l := &m.layers[li]
		for i := 0; i < n; i++ {
			rmsnorm(b.xb[i*dim:(i+1)*dim], b.x[i*dim:(i+1)*dim], l.attnNorm, c.NormEps)
		}
		m.matmuls(b.xb, n, MatMulOp{b.q, l.wq}, MatMulOp{b.k, l.wk}, MatMulOp{b.v, l.wv})
		b.queries = b.queries[:0]
		for i, e := range entries {
			q := b.q[i*qdim : (i+1)*qdim]
			k := b.k[i*kvdim : (i+1)*kvdim]
			v := b.v[i*kvdim : (i+1)*kvdim]
			if l.bq != nil {
				addTo(q, l.bq)
				addTo(k, l.bk)
				addTo(v, l.bv)
			}
			m.rope(q, c.Heads, e.pos)
			m.rope(k, c.KVHeads, e.pos)
			copy(e.cache.k[li][e.pos*kvdim:], k)
			copy(e.cache.v[li][e.pos*kvdim:], v)
			b.queries = append(b.queries, AttentionQuery{
				Q: q, K: e.cache.k[li][:(e.pos+1)*kvdim], V: e.cache.v[li][:(e.pos+1)*kvdim], Pos: e.pos,
			})
		}
		be.Attention(b.att, b.queries, c.Heads, c.KVHeads, c.HeadDim)
		be.MatMul(b.xb, l.wo, b.att, n)
		addTo(b.x[:n*dim], b.xb[:n*dim])
		for i := 0; i < n; i++ {
			rmsnorm(b.xb[i*dim:(i+1)*dim], b.x[i*dim:(i+1)*dim], l.ffnNorm, c.NormEps)
		}
		m.matmuls(b.xb, n, MatMulOp{b.hb, l.wgate}, MatMulOp{b.hb2, l.wup})
		if b.swiglu == nil {
			b.swiglu = func(lo, hi int) { swiglu(b.hb[lo:hi], b.hb2[lo:hi]) }
		}
		m.elementwise(n*c.Hidden, b.swiglu)
		be.MatMul(b.xb, l.wdown, b.hb, n)
		addTo(b.x[:n*dim], b.xb[:n*dim])
	}
	for _, e := range entries {
		e.cache.n = max(e.cache.n, e.pos+1)
	}
	// Final norm and classifier only for the rows that need logits.
	nl := 0
	for i, e := range entries {
		if e.wantLogits {
			rmsnorm(b.xb[nl*dim:(nl+1)*dim], b.x[i*dim:(i+1)*dim], m.outNorm, c.NormEps)
			nl++
		}
	}
	b.logits = grow(b.logits, nl*c.Vocab)
	if nl > 0 {
		be.MatMul(b.logits, m.output, b.xb, nl)
	}
	return b.logits, nil
}

// multiMatMuler is a Backend that runs several products of one input in a
// single parallel region (the CPU backend).
type multiMatMuler interface {
	MatMulMany(ops []MatMulOp, x []float32, n int)
}

// matmuls computes every op's product with x: in one region where the
// backend can, else one MatMul at a time.
func (m *Model) matmuls(x []float32, n int, ops ...MatMulOp) {
	if mm, ok := m.backend.(multiMatMuler); ok {
		b := &m.buf
		b.ops = append(b.ops[:0], ops...)
		mm.MatMulMany(b.ops, x, n)
		return
	}
	for _, op := range ops {
		m.backend.MatMul(op.Out, op.W, x, n)
	}
}

// parallelFor is a Backend that lends its threads to element-wise work.
type parallelFor interface {
	For(n, grain int, f func(lo, hi int))
}

// elementwise runs f over [0, n) on the backend's threads when the work is
// large enough to pay for the hand-off, else inline. A decode step's SwiGLU
// (2048 exponentials at 110M, tens of microseconds) already is: run inline,
// it left the second thread idle for that long in every layer.
func (m *Model) elementwise(n int, f func(lo, hi int)) {
	const grain = 1024
	if p, ok := m.backend.(parallelFor); ok && n > grain {
		p.For(n, grain, f)
		return
	}
	f(0, n)
}

func rmsnorm(out, x, w []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	ss = ss/float32(len(x)) + eps
	inv := float32(1 / math.Sqrt(float64(ss)))
	w = w[:len(x)]
	out = out[:len(x)]
	for i, v := range x {
		out[i] = w[i] * (v * inv)
	}
}

func addTo(dst, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += x[i]
	}
}

// swiglu computes gate = silu(gate) * up in place.
func swiglu(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

// rope rotates the first RopeDim dimensions of each head in x at pos:
// adjacent pairs (ggml's normal mode, used for llama, whose Q/K weights
// the converters permute) or pairs half a rotation apart (NEOX, qwen2).
func (m *Model) rope(x []float32, heads, pos int) {
	c := &m.cfg
	half := c.RopeDim / 2
	p := float64(pos) * c.RopeFreqScale
	for i := 0; i < half; i++ {
		theta := p * m.invFreq[i]
		sin, cos := math.Sincos(theta)
		fc, fs := float32(cos), float32(sin)
		for h := 0; h < heads; h++ {
			v := x[h*c.HeadDim : (h+1)*c.HeadDim]
			var a, b int
			if c.RopeNeox {
				a, b = i, i+half
			} else {
				a, b = 2*i, 2*i+1
			}
			x0, x1 := v[a], v[b]
			v[a] = x0*fc - x1*fs
			v[b] = x0*fs + x1*fc
		}
	}
}
