package llm

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// Backend runs the heavy kernels of a forward pass: matrix products against
// model weights and attention over a sequence's KV cache. Model code calls
// only these for anything that scales with the weights or the context;
// the remaining element-wise work (norms, RoPE, SwiGLU, residuals) is a few
// passes over dim-sized vectors. A CUDA backend implements the same two
// methods, keeping weights resident on the device keyed by *Weight.
//
// Implementations must be safe for use by one forward pass at a time.
type Backend interface {
	// MatMul computes out[i*w.Rows+r] = Σ_c w[r,c]·x[i*w.Cols+c] for the
	// n rows of x, reading each weight row once for all n rows.
	MatMul(out []float32, w *Weight, x []float32, n int)
	// Attention computes, for each of the queries, softmax(q·Kᵀ/√d)·V over
	// positions 0..Pos of its cache with grouped-query heads, writing
	// nHead*headDim values per query into out.
	Attention(out []float32, qs []AttentionQuery, nHead, nKVHead, headDim int)
}

// AttentionQuery is one query row of a batched attention call: q holds
// nHead*headDim values; K and V hold the cache rows 0..Pos of one layer,
// each nKVHead*headDim wide.
type AttentionQuery struct {
	Q    []float32
	K, V []float32
	Pos  int
}

// CPU is the portable Backend: kernels in Go (with assembly for the hot
// dot products on amd64), parallel across goroutines over row blocks.
type CPU struct {
	threads int
	k       kernels
	q8      q8Rows
}

// kernels are the dot products the CPU backend uses: assembly where the
// processor has AVX2, FMA and F16C, portable Go elsewhere.
type kernels struct {
	simd    bool
	dotF32  func(a, b []float32) float32
	tileF32 func(w0, w1 []float32, x *[4][]float32, out *[8]float32)
	tileQ8  func(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32)
	// tileQ8x2 is the 2-row tile on unsigned activations (nil without VNNI).
	tileQ8x2 func(w0, w1 []byte, xu *[4][]uint8, xd *[4][]float32, out *[8]float32)
	axpy     func(dst, x []float32, a float32)
	dotQ4K   func(w []byte, xq []int8, xd []float32, xs []int32) float32
	dotQ6K   func(w []byte, xq []int8, xd []float32) float32
	dotQ4_0  func(w []byte, xq []int8, xd []float32) float32
	dotF16   func(w []byte, x []float32) float32
	dotQ8    func(w []byte, xq []int8, xd []float32) float32
}

func newKernels(simd bool) kernels {
	if simd {
		k := kernels{simd: true, dotF32: dotF32SIMD, tileF32: tileF32SIMD, tileQ8: tileQ8_0SIMD, axpy: axpySIMD, dotQ4K: dotQ4KSIMD, dotQ6K: dotQ6KSIMD, dotQ4_0: dotQ4_0SIMD, dotF16: dotF16SIMD, dotQ8: dotQ8_0SIMD}
		if vnniKernels() {
			k.tileQ8 = tileQ8_0VNNI
			k.tileQ8x2 = tileQ8_0x2VNNI
		}
		return k
	}
	return kernels{dotF32: dotF32Go, dotF16: dotF16, dotQ8: dotQ8_0Go, axpy: axpy, dotQ4K: dotQ4K, dotQ6K: dotQ6K, dotQ4_0: dotQ4_0}
}

// NewCPU returns a CPU backend using threads goroutines (≤ 0: GOMAXPROCS).
func NewCPU(threads int) *CPU {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &CPU{threads: threads, k: newKernels(simdKernels())}
}

// NewPortableCPU is NewCPU restricted to the portable Go kernels, for
// comparisons and for hosts where the assembly must not run.
func NewPortableCPU(threads int) *CPU {
	c := NewCPU(threads)
	c.k = newKernels(false)
	return c
}

// SIMD reports whether the assembly kernels are in use.
func (c *CPU) SIMD() bool { return c.k.simd }

// parallel runs f over [0,n) split into chunks of at least grain items,
// handing chunks to up to c.threads goroutines.
func (c *CPU) parallel(n, grain int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	workers := c.threads
	chunk := max(grain, (n+workers*4-1)/(workers*4))
	chunks := (n + chunk - 1) / chunk
	if workers > chunks {
		workers = chunks
	}
	if workers <= 1 {
		f(0, n)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= chunks {
				return
			}
			lo := i * chunk
			f(lo, min(n, lo+chunk))
		}
	}
	wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go func() { defer wg.Done(); work() }()
	}
	work()
	wg.Wait()
}

// MatMul implements Backend.
func (c *CPU) MatMul(out []float32, w *Weight, x []float32, n int) {
	rows, cols := w.Rows, w.Cols
	out = out[:n*rows]
	x = x[:n*cols]
	grain := max(1, 16384/max(1, cols))
	switch w.Type {
	case gguf.F32:
		wf := w.F32
		dot := c.k.dotF32
		tile := c.k.tileF32
		c.parallel(rows, grain, func(lo, hi int) {
			r := lo
			// Register tiles of 2 weight rows × 4 activation rows read
			// each loaded vector several times; the single dot product
			// handles the edges with the same summation order.
			if tile != nil && n >= 4 {
				var xs [4][]float32
				var acc [8]float32
				for ; r+2 <= hi; r += 2 {
					w0, w1 := wf[r*cols:(r+1)*cols], wf[(r+1)*cols:(r+2)*cols]
					i := 0
					for ; i+4 <= n; i += 4 {
						for j := range xs {
							xs[j] = x[(i+j)*cols : (i+j+1)*cols]
						}
						tile(w0, w1, &xs, &acc)
						for j := 0; j < 4; j++ {
							out[(i+j)*rows+r] = acc[j]
							out[(i+j)*rows+r+1] = acc[4+j]
						}
					}
					for ; i < n; i++ {
						out[i*rows+r] = dot(w0, x[i*cols:(i+1)*cols])
						out[i*rows+r+1] = dot(w1, x[i*cols:(i+1)*cols])
					}
				}
			}
			for ; r < hi; r++ {
				row := wf[r*cols : (r+1)*cols]
				for i := 0; i < n; i++ {
					out[i*rows+r] = dot(row, x[i*cols:(i+1)*cols])
				}
			}
		})
	case gguf.F16, gguf.BF16:
		dot := c.k.dotF16
		if w.Type == gguf.BF16 {
			dot = dotBF16
		}
		c.parallel(rows, grain, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row := w.Row(r)
				for i := 0; i < n; i++ {
					out[i*rows+r] = dot(row, x[i*cols:(i+1)*cols])
				}
			}
		})
	default:
		c.q8.quantize(x, n, cols)
		q8 := &c.q8
		dotQ8 := c.k.dotQ8
		tileQ8 := c.k.tileQ8
		tileQ8x2 := c.k.tileQ8x2
		dotQ4K := c.k.dotQ4K
		dotQ6K := c.k.dotQ6K
		dotQ4_0 := c.k.dotQ4_0
		c.parallel(rows, grain, func(lo, hi int) {
			var txq [4][]int8
			var txu [4][]uint8
			var txd [4][]float32
			var acc [4]float32
			var acc8 [8]float32
			r := lo
			if w.Type == gguf.Q8_0 && tileQ8x2 != nil && n >= 4 {
				for ; r+2 <= hi; r += 2 {
					w0, w1 := w.Row(r), w.Row(r+1)
					i := 0
					for ; i+4 <= n; i += 4 {
						for j := 0; j < 4; j++ {
							txu[j], txd[j] = q8.rowU(i + j)
						}
						tileQ8x2(w0, w1, &txu, &txd, &acc8)
						for j := 0; j < 4; j++ {
							out[(i+j)*rows+r] = acc8[j]
							out[(i+j)*rows+r+1] = acc8[4+j]
						}
					}
					for ; i < n; i++ {
						xq, xd, _ := q8.row(i)
						out[i*rows+r] = dotQ8(w0, xq, xd)
						out[i*rows+r+1] = dotQ8(w1, xq, xd)
					}
				}
			}
			for ; r < hi; r++ {
				row := w.Row(r)
				i := 0
				if w.Type == gguf.Q8_0 && tileQ8 != nil {
					for ; i+4 <= n; i += 4 {
						for j := 0; j < 4; j++ {
							txq[j], txd[j], _ = q8.row(i + j)
						}
						tileQ8(row, &txq, &txd, &acc)
						for j := 0; j < 4; j++ {
							out[(i+j)*rows+r] = acc[j]
						}
					}
				}
				for ; i < n; i++ {
					xq, xd, xs := q8.row(i)
					var v float32
					switch w.Type {
					case gguf.Q8_0:
						v = dotQ8(row, xq, xd)
					case gguf.Q4_0:
						v = dotQ4_0(row, xq, xd)
					case gguf.Q4_K:
						v = dotQ4K(row, xq, xd, xs)
					case gguf.Q6_K:
						v = dotQ6K(row, xq, xd)
					}
					out[i*rows+r] = v
				}
			}
		})
	}
}

// Attention implements Backend.
func (c *CPU) Attention(out []float32, qs []AttentionQuery, nHead, nKVHead, headDim int) {
	qdim := nHead * headDim
	kvdim := nKVHead * headDim
	group := nHead / nKVHead
	scale := float32(1 / math.Sqrt(float64(headDim)))
	dot := c.k.dotF32
	axpyK := c.k.axpy
	maxPos := 0
	for _, q := range qs {
		maxPos = max(maxPos, q.Pos+1)
	}
	c.parallel(len(qs)*nHead, 1, func(lo, hi int) {
		att := make([]float32, maxPos) // per chunk: chunks run concurrently
		for j := lo; j < hi; j++ {
			qi, h := j/nHead, j%nHead
			q := qs[qi]
			qh := q.Q[h*headDim : (h+1)*headDim]
			kvh := h / group
			n := q.Pos + 1
			sc := att[:n]
			mx := float32(math.Inf(-1))
			for t := 0; t < n; t++ {
				k := q.K[t*kvdim+kvh*headDim : t*kvdim+(kvh+1)*headDim]
				v := dot(qh, k) * scale
				sc[t] = v
				mx = max(mx, v)
			}
			var sum float32
			for t := range sc {
				e := float32(math.Exp(float64(sc[t] - mx)))
				sc[t] = e
				sum += e
			}
			o := out[qi*qdim+h*headDim : qi*qdim+(h+1)*headDim]
			clear(o)
			inv := 1 / sum
			for t := 0; t < n; t++ {
				a := sc[t] * inv
				v := q.V[t*kvdim+kvh*headDim : t*kvdim+(kvh+1)*headDim]
				axpyK(o, v, a)
			}
		}
	})
}

func axpy(dst, x []float32, a float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += a * x[i]
	}
}
