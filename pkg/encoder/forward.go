package encoder

import (
	"math"

	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/internal/gemm"
)

// attScratch is one worker's memory for the attention of one (text,
// head): K and V packed for the products, and the scores.
type attScratch struct {
	k, v gemm.Packed
	sc   []float32
}

// packWeights packs the layers' F32, F16 and BF16 matrices into the GEMM's
// panels once, at load (as float32: F16 and BF16 weights take twice their
// stored size in memory); Q8_0 matrices stay with the backend's kernels,
// and packWeights reports whether any did.
func (e *Encoder) packWeights() (unpacked bool) {
	var row []float32
	pack := func(l *linear) {
		w := l.w
		if w == nil {
			return // a BERT layer's gate
		}
		switch w.Type {
		case gguf.F32:
			l.p = gemm.Pack(w.F32, w.Cols, w.Rows, w.Cols)
		case gguf.F16, gguf.BF16:
			m := make([]float32, w.Rows*w.Cols)
			for r := range w.Rows {
				row = m[r*w.Cols : (r+1)*w.Cols]
				w.DequantizeRow(r, row)
			}
			l.p = gemm.Pack(m, w.Cols, w.Rows, w.Cols)
		default:
			unpacked = true
			return
		}
		l.w = nil // the packed copy replaces it
	}
	for i := range e.layers {
		l := &e.layers[i]
		for _, lin := range []*linear{&l.q, &l.k, &l.v, &l.o, &l.inter, &l.gate, &l.output} {
			pack(lin)
		}
	}
	return unpacked
}

// linear sets dst (n×out) to x (n×in) times the weight transposed plus
// the bias: through the packed GEMM on all the threads, or the backend's
// MatMul for a quantized weight or a caller's backend.
func (e *Encoder) linear(dst, x []float32, n int, l linear) {
	if l.p != nil {
		e.gemm.Mul(l.p, dst, l.p.N, x, l.p.K, n, l.b)
		return
	}
	in, out := l.w.Cols, l.w.Rows
	for lo := 0; lo < n; lo += linearBlock {
		hi := min(n, lo+linearBlock)
		e.backend.MatMul(dst[lo*out:hi*out], l.w, x[lo*in:hi*in], hi-lo)
	}
	if l.b == nil {
		return // nomic-bert's linears have no bias
	}
	for t := range n {
		addTo(dst[t*out:(t+1)*out], l.b)
	}
}

// linearBlock is the tokens of one backend product: the backend reads its
// whole x for every pair of weight rows, so x must stay in cache (64 rows
// of 384–1536 floats: 96–384 KiB); a 4,096-token pack in one product ran
// ~7× slower.
const linearBlock = 64

// attention sets dst to softmax(q·kᵀ/√d)·v within each packed text, for
// every head: two GEMM products per (text, head), S = Q·Kᵀ and O = P·V
// (V packed transposed, O written into dst in place), the threads claiming
// (text, head) pairs.
func (e *Encoder) attention(dst, q, k, v []float32, starts []int) {
	c := e.cfg
	h, d := c.Hidden, c.Hidden/c.Heads
	scale := float32(1 / math.Sqrt(float64(d)))
	jobs := (len(starts) - 1) * c.Heads
	e.pool.Run(jobs, func(w, job int) {
		s, buf := &e.att[w], e.gemm.Buf(w)
		lo, hi := starts[job/c.Heads], starts[job/c.Heads+1]
		off, L := lo*h+(job%c.Heads)*d, hi-lo
		s.k.Pack(k[off:], h, L, d)
		s.sc = grow(s.sc, L*L)
		s.k.Mul(s.sc, L, q[off:], h, L, nil, 0, L, buf) // sc[t*L+s] = q_t·k_s
		for t := range L {
			softmax(s.sc[t*L:(t+1)*L], scale)
		}
		s.v.PackT(v[off:], h, L, d)
		s.v.Mul(dst[off:], h, s.sc, L, L, nil, 0, d, buf) // o_t = Σ_s p_ts·v_s
	})
}

// softmaxGo sets row to softmax(row·scale).
func softmaxGo(row []float32, scale float32) {
	m := row[0]
	for _, a := range row {
		m = max(m, a)
	}
	var sum float32
	for s, a := range row {
		row[s] = exp32((a - m) * scale)
		sum += row[s]
	}
	inv := 1 / sum
	for s := range row {
		row[s] *= inv
	}
}

// addNorm sets x = LayerNorm(x + y), row by row, split among the threads.
func (e *Encoder) addNorm(x, y []float32, ln layerNorm) {
	h := e.cfg.Hidden
	rows := len(x) / h
	e.parallel(rows, 8, func(lo, hi int) {
		xs, ys := x[lo*h:hi*h], y[lo*h:hi*h]
		addTo(xs, ys)
		e.layerNorm(xs, ln)
	})
}

// geluGo is the exact GELU, x/2 · (1 + erf(x/√2)).
func geluGo(x []float32) {
	for i, a := range x {
		x[i] = 0.5 * a * (1 + erf32(a*(1/math.Sqrt2)))
	}
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
