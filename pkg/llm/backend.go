package llm

import (
	"math"
	"runtime"

	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/internal/pool"
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
	pool *pool.Pool
	k    kernels
	q8   q8Rows

	// State of the current matmul region, read by every thread; kept
	// here, with the region function bound once, so a region allocates
	// nothing.
	mm     matmulJob
	mmRun  func(worker, chunk int)
	att    attentionJob
	attRun func(worker, chunk int)
	one    [1]MatMulOp      // MatMul's op, so that a call allocates nothing
	forF   func(lo, hi int) // For's function while it runs
	forRun func(worker, lo, hi int)
}

// kernelISA names a family of kernels. The assembly families compute
// every product bit-identically to each other (the AVX-512 kernels keep
// the AVX2 ones' 8-lane sums, two to a register), so choosing between
// them changes speed only; portable Go sums in another order. Tests run
// every family the CPU has.
type kernelISA int

const (
	isaGo     kernelISA = iota // portable Go
	isaAVX2                    // AVX2, FMA, F16C (and AVX512-VNNI on ymm where present)
	isaAVX512                  // isaAVX2 with 512-bit tiles: AVX512F, VL, VNNI
)

// bestISA is the fastest kernel family this CPU runs.
func bestISA() kernelISA {
	isas := supportedISAs()
	return isas[len(isas)-1]
}

// supportedISAs lists the kernel families this CPU runs, slowest first.
func supportedISAs() []kernelISA {
	isas := []kernelISA{isaGo}
	if simdKernels() {
		isas = append(isas, isaAVX2)
	}
	if avx512Kernels() {
		isas = append(isas, isaAVX512)
	}
	return isas
}

func (i kernelISA) String() string {
	return [...]string{"go", "avx2", "avx512"}[i]
}

// kernels are the dot products the CPU backend uses: assembly where the
// processor has AVX2, FMA and F16C (some in 512-bit versions where it has
// AVX-512), portable Go elsewhere.
type kernels struct {
	simd    bool
	dotF32  func(a, b []float32) float32
	tileF32 func(w0, w1 []float32, x *[4][]float32, out *[8]float32)
	// tileF32x8 is the 4-weight-row × 8-activation-row tile over
	// contiguous rows of cols (nil: 2×4 tiles only).
	tileF32x8 func(w, x []float32, cols int, out *[32]float32)
	tileQ8    func(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32)
	// tileQ8x2 is the 2-row tile on unsigned activations (nil without VNNI).
	tileQ8x2 func(w0, w1 []byte, xu *[4][]uint8, xd *[4][]float32, out *[8]float32)
	// matvecF32 is the batch-1 kernel: out[r] = row r of w · x for a
	// block of rows (nil: one dot product per row).
	matvecF32 func(w, x, out []float32)
	// matvecQ8 is the batch-1 Q8_0 kernel over a block of rows, given the
	// activations both signed (xq) and offset by 128 (xu) (nil: one dot
	// product per row).
	matvecQ8 func(w []byte, xq []int8, xu []uint8, xd []float32, out []float32)
	axpy     func(dst, x []float32, a float32)
	// dotRows computes out[r] = w[r·stride : r·stride+len(x)]·x, each as
	// dotF32 would (attention's scores over a KV cache).
	dotRows func(w []float32, stride int, x, out []float32)
	// axpyRows computes dst += a[t]·v[t·stride : t·stride+len(dst)] for t
	// in order, as one axpy per t would (attention's sum of V rows).
	axpyRows func(dst, v []float32, stride int, a []float32)
	dotQ4K   func(w []byte, xq []int8, xd []float32, xs []int32) float32
	dotQ6K   func(w []byte, xq []int8, xd []float32) float32
	dotQ4_0  func(w []byte, xq []int8, xd []float32) float32
	dotF16   func(w []byte, x []float32) float32
	dotQ8    func(w []byte, xq []int8, xd []float32) float32
	// quantQ8 quantizes activations as quantizeQ8Go does, bit for bit.
	quantQ8 func(x []float32, qs []int8, qu []uint8, d []float32, sum []int32)
}

// newKernels returns the kernels of family isa, which the CPU must run.
func newKernels(isa kernelISA) kernels {
	if isa == isaGo {
		return kernels{dotF32: dotF32Go, dotF16: dotF16, dotQ8: dotQ8_0Go, axpy: axpy, dotQ4K: dotQ4K, dotQ6K: dotQ6K, dotQ4_0: dotQ4_0, dotRows: dotRowsGo, axpyRows: axpyRowsGo, quantQ8: quantizeQ8Go}
	}
	k := kernels{simd: true, dotF32: dotF32SIMD, tileF32: tileF32SIMD, tileQ8: tileQ8_0SIMD, axpy: axpySIMD, dotQ4K: dotQ4KSIMD, dotQ6K: dotQ6KSIMD, dotQ4_0: dotQ4_0SIMD, dotF16: dotF16SIMD, dotQ8: dotQ8_0SIMD, matvecF32: matvecF32SIMD, matvecQ8: matvecQ8_0SIMD, dotRows: dotRowsF32SIMD, axpyRows: axpyRowsSIMD, quantQ8: quantizeQ8Go}
	if vnniKernels() {
		k.tileQ8 = tileQ8_0VNNI
		k.tileQ8x2 = tileQ8_0x2VNNI
	}
	if isa == isaAVX512 {
		k.useAVX512()
	}
	return k
}

// NewCPU returns a CPU backend using threads threads (≤ 0: GOMAXPROCS).
// Its worker goroutines live until Close, or until the backend becomes
// unreachable.
func NewCPU(threads int) *CPU {
	c := &CPU{pool: pool.New(threads), k: newKernels(bestISA())}
	c.mmRun = c.runMatMul
	c.attRun = c.runAttention
	c.forRun = func(_, lo, hi int) { c.forF(lo, hi) }
	runtime.AddCleanup(c, (*pool.Pool).Close, c.pool)
	return c
}

// NewPortableCPU is NewCPU restricted to the portable Go kernels, for
// comparisons and for hosts where the assembly must not run.
func NewPortableCPU(threads int) *CPU {
	c := NewCPU(threads)
	c.k = newKernels(isaGo)
	return c
}

// Close stops the backend's worker goroutines; the backend must not be
// used afterwards.
func (c *CPU) Close() { c.pool.Close() }

// SIMD reports whether the assembly kernels are in use.
func (c *CPU) SIMD() bool { return c.k.simd }

// Threads is the number of threads the backend computes on.
func (c *CPU) Threads() int { return c.pool.Threads() }

// For runs f over [0, n) split into chunks of at least grain items on the
// backend's threads, for model code beside the matmuls (an encoder's
// element-wise passes) that should use the same threads. Calls must not
// overlap with each other or with the backend's kernels.
func (c *CPU) For(n, grain int, f func(lo, hi int)) {
	c.forF = f
	c.pool.For(n, grain, c.forRun)
	c.forF = nil
}

// MatMulOp is one product of a MatMulMany call: Out = W·x.
type MatMulOp struct {
	Out []float32
	W   *Weight
}

// MatMul implements Backend.
func (c *CPU) MatMul(out []float32, w *Weight, x []float32, n int) {
	c.one[0] = MatMulOp{out, w}
	c.MatMulMany(c.one[:], x, n)
	c.one[0] = MatMulOp{}
}

// MatMulMany computes every op's product with the same n input rows x (all
// weights have x's width) in one parallel region: the rows of all weights
// are split among the threads together, and quantized weights share one
// quantization of x. Fusing Q, K and V (or gate and up) this way halves the
// hand-offs between threads and keeps both busy through small matrices.
func (c *CPU) MatMulMany(ops []MatMulOp, x []float32, n int) {
	if len(ops) == 0 || n <= 0 {
		return
	}
	cols := ops[0].W.Cols
	x = x[:n*cols]
	quant := false
	for _, op := range ops {
		if op.W.Cols != cols {
			panic("llm: MatMulMany weights of different widths")
		}
		_ = op.Out[:n*op.W.Rows]
		if op.W.F32 == nil && op.W.Type != gguf.F16 && op.W.Type != gguf.BF16 {
			quant = true
		}
	}
	if quant {
		// One block is 32 roundings; split only a prefill batch's worth
		// (a decode step's row, inline, hands nothing to the pool).
		c.q8.resize(n, cols)
		if nb := n * cols / 32; nb <= 64 {
			c.quantize(x, 0, nb)
		} else {
			c.pool.For(nb, 64, func(_, lo, hi int) { c.quantize(x, lo, hi) })
		}
	}
	j := &c.mm
	j.ops, j.x, j.n = ops, x, n
	j.parts = j.parts[:0]
	threads := c.pool.Threads()
	if n == 1 {
		j.guided(ops, threads)
	} else {
		j.uniform(ops, threads)
	}
	c.pool.Run(len(j.parts), c.mmRun)
	j.ops, j.x = nil, nil
}

// quantize fills blocks [lo, hi) of c.q8 from x.
func (c *CPU) quantize(x []float32, lo, hi int) {
	q := &c.q8
	c.k.quantQ8(x[lo*32:hi*32], q.qs[lo*32:hi*32], q.qu[lo*32:hi*32], q.d[lo:hi], q.sum[lo:hi])
}

type matmulJob struct {
	ops   []MatMulOp
	x     []float32
	n     int
	parts []matmulPart // the region's chunks, claimed in order
}

// matmulPart is rows [lo, hi) of ops[op].
type matmulPart struct{ op, lo, hi int }

// uniform splits the rows of all ops into chunks of equal size (a multiple
// of 4, for the tiles), about 8 per thread overall, each at least 16 KiB of
// weights' worth of columns.
func (j *matmulJob) uniform(ops []MatMulOp, threads int) {
	total := 0
	for _, op := range ops {
		total += op.W.Rows
	}
	cols := ops[0].W.Cols
	chunk := max(16384/max(1, cols), (total+8*threads-1)/(8*threads))
	chunk = (chunk + 3) &^ 3
	for o, op := range ops {
		for lo := 0; lo < op.W.Rows; lo += chunk {
			j.parts = append(j.parts, matmulPart{o, lo, min(op.W.Rows, lo+chunk)})
		}
	}
}

// guided splits the rows of all ops (a batch-1 product, which streams its
// weights once) into chunks that shrink as the region goes on: each takes
// 1/(2·threads) of the rows still unclaimed, down to 48 KiB of weights. The
// threads claim them in order, so big chunks keep the claiming cheap and
// the small last ones leave a thread waiting for its partner only for a
// few microseconds at the end of the region; uniform chunks of 1/8 of a
// thread's share left it waiting up to that much. Sizes are multiples of
// 16 rows, so no two threads write one cache line of the output.
func (j *matmulJob) guided(ops []MatMulOp, threads int) {
	left := 0
	for _, op := range ops {
		left += op.W.Rows
	}
	cols := ops[0].W.Cols
	minRows := (max(16, 49152/max(1, 4*cols)) + 15) &^ 15
	for o, op := range ops {
		for lo := 0; lo < op.W.Rows; {
			size := (max(minRows, left/(2*threads)) + 15) &^ 15
			hi := min(op.W.Rows, lo+size)
			j.parts = append(j.parts, matmulPart{o, lo, hi})
			left -= hi - lo
			lo = hi
		}
	}
}

func (c *CPU) runMatMul(_, i int) {
	j := &c.mm
	p := j.parts[i]
	op := j.ops[p.op]
	c.matmulRows(op.Out, op.W, j.x, j.n, p.lo, p.hi)
}

// matmulRows computes rows [lo, hi) of out = w·x for the n rows of x; for
// quantized weights c.q8 holds x quantized.
func (c *CPU) matmulRows(out []float32, w *Weight, x []float32, n, lo, hi int) {
	rows, cols := w.Rows, w.Cols
	switch w.Type {
	case gguf.F32:
		wf := w.F32
		if mv := c.k.matvecF32; mv != nil && n == 1 {
			// Batch 1 (decoding): the block streams in one call.
			mv(wf[lo*cols:hi*cols], x[:cols], out[lo:hi])
			return
		}
		r := lo
		// 4×8 tiles where the kernels have them: rows in fours, the
		// activations in eights, the rest of each four as below.
		if tile := c.k.tileF32x8; tile != nil && n >= 8 {
			var acc [32]float32
			n8 := n &^ 7
			for ; r+4 <= hi; r += 4 {
				for i := 0; i < n8; i += 8 {
					tile(wf[r*cols:(r+4)*cols], x[i*cols:(i+8)*cols], cols, &acc)
					for q := 0; q < 4; q++ {
						for j := 0; j < 8; j++ {
							out[(i+j)*rows+r+q] = acc[8*q+j]
						}
					}
				}
				if n8 < n {
					c.matmulF32(out, wf, x, rows, cols, r, r+4, n8, n)
				}
			}
		}
		c.matmulF32(out, wf, x, rows, cols, r, hi, 0, n)
	case gguf.F16, gguf.BF16:
		dot := c.k.dotF16
		if w.Type == gguf.BF16 {
			dot = dotBF16
		}
		for r := lo; r < hi; r++ {
			row := w.Row(r)
			for i := 0; i < n; i++ {
				out[i*rows+r] = dot(row, x[i*cols:(i+1)*cols])
			}
		}
	default:
		if n == 1 {
			c.matvecQuant(out, w, lo, hi)
			return
		}
		q8 := &c.q8
		dotQ8 := c.k.dotQ8
		var txq [4][]int8
		var txu [4][]uint8
		var txd [4][]float32
		var acc [4]float32
		var acc8 [8]float32
		r := lo
		if tileQ8x2 := c.k.tileQ8x2; w.Type == gguf.Q8_0 && tileQ8x2 != nil && n >= 4 {
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
			if tileQ8 := c.k.tileQ8; w.Type == gguf.Q8_0 && tileQ8 != nil {
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
					v = c.k.dotQ4_0(row, xq, xd)
				case gguf.Q4_K:
					v = c.k.dotQ4K(row, xq, xd, xs)
				case gguf.Q6_K:
					v = c.k.dotQ6K(row, xq, xd)
				}
				out[i*rows+r] = v
			}
		}
	}
}

// matmulF32 computes weight rows [lo, hi) against activation rows [i0, n)
// of an F32 product: register tiles of 2 weight rows × 4 activation rows
// read each loaded vector several times; the single dot product handles
// the edges with the same summation order.
func (c *CPU) matmulF32(out, wf, x []float32, rows, cols, lo, hi, i0, n int) {
	dot := c.k.dotF32
	r := lo
	if tile := c.k.tileF32; tile != nil && n-i0 >= 4 {
		var xs [4][]float32
		var acc [8]float32
		for ; r+2 <= hi; r += 2 {
			w0, w1 := wf[r*cols:(r+1)*cols], wf[(r+1)*cols:(r+2)*cols]
			i := i0
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
		for i := i0; i < n; i++ {
			out[i*rows+r] = dot(row, x[i*cols:(i+1)*cols])
		}
	}
}

type attentionJob struct {
	out                     []float32
	qs                      []AttentionQuery
	nHead, nKVHead, headDim int
	scratch                 [][]float32 // per thread: scores of one head
}

// Attention implements Backend.
func (c *CPU) Attention(out []float32, qs []AttentionQuery, nHead, nKVHead, headDim int) {
	j := &c.att
	j.out, j.qs, j.nHead, j.nKVHead, j.headDim = out, qs, nHead, nKVHead, headDim
	maxPos := 0
	for _, q := range qs {
		maxPos = max(maxPos, q.Pos+1)
	}
	threads := c.pool.Threads()
	if len(j.scratch) < threads {
		j.scratch = make([][]float32, threads)
	}
	for t, sc := range j.scratch {
		if cap(sc) < maxPos { // doubling: a decode step's one more position allocates nothing
			sc = make([]float32, 0, max(maxPos, 2*cap(sc)))
		}
		j.scratch[t] = sc[:maxPos]
	}
	c.pool.Run(len(qs)*nHead, c.attRun)
	j.out, j.qs = nil, nil
}

// runAttention computes one (query, head) pair; the threads claim pairs one
// at a time because their cost grows with the position, so a static split
// would leave one thread waiting in a prefill batch.
func (c *CPU) runAttention(worker, idx int) {
	j := &c.att
	nHead, headDim := j.nHead, j.headDim
	qdim := nHead * headDim
	kvdim := j.nKVHead * headDim
	group := nHead / j.nKVHead
	scale := float32(1 / math.Sqrt(float64(headDim)))
	att := j.scratch[worker]
	qi, h := idx/nHead, idx%nHead
	q := j.qs[qi]
	qh := q.Q[h*headDim : (h+1)*headDim]
	kvh := h / group
	n := q.Pos + 1
	sc := att[:n]
	// All positions' scores in one call: the cache's rows of this head
	// are kvdim apart.
	c.k.dotRows(q.K[kvh*headDim:], kvdim, qh, sc)
	mx := float32(math.Inf(-1))
	for t, v := range sc {
		v *= scale
		sc[t] = v
		mx = max(mx, v)
	}
	var sum float32
	for t := range sc {
		e := float32(math.Exp(float64(sc[t] - mx)))
		sc[t] = e
		sum += e
	}
	o := j.out[qi*qdim+h*headDim : qi*qdim+(h+1)*headDim]
	clear(o)
	inv := 1 / sum
	for t := range sc {
		sc[t] *= inv
	}
	c.k.axpyRows(o, q.V[kvh*headDim:], kvdim, sc)
}

func dotRowsGo(w []float32, stride int, x, out []float32) {
	for r := range out {
		out[r] = dotF32Go(w[r*stride:r*stride+len(x)], x)
	}
}

func axpyRowsGo(dst, v []float32, stride int, a []float32) {
	for t, at := range a {
		axpy(dst, v[t*stride:t*stride+len(dst)], at)
	}
}

func axpy(dst, x []float32, a float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += a * x[i]
	}
}
