// Package gemm is the single-precision matrix product of the encoder's
// forward pass: C = A·Bᵀ (+ bias) for activations A (m×k, one token a
// row) and weights B (n×k, the layout of PyTorch's Linear). B is packed
// once, at load, into panels of 16 columns; A is read in place, six rows
// at a time; a 6×16 register tile (AVX2 and FMA assembly on amd64, Go
// elsewhere), or 6×32 over two panels with AVX-512, runs over blocks sized
// for the caches, after GotoBLAS and BLIS. (Packing A as they do cost a tenth of
// a 256-token encoder pass, most of it for attention's P·V, whose A is
// 256 wide for 32 outputs.)
package gemm

import "github.com/tributary-rag/tributary/pkg/internal/pool"

const (
	mr = 6   // rows of the register tile (tokens)
	nr = 16  // columns of the register tile (outputs): two 8-float vectors
	kc = 256 // depth of a block: one 16×256 panel of B (16 KiB) stays in L1
	mc = 144 // rows of A per block: 144×256 floats (144 KiB) stay in L2
)

// Packed is a matrix B of N rows (outputs) and K columns (depth) packed
// for the kernel: panel p holds B's rows [16p, 16p+16) as K groups of 16
// floats, zero past N.
type Packed struct {
	N, K int
	data []float32
}

// Pack packs the n×k matrix b, row j starting at b[j*ldb].
func Pack(b []float32, ldb, n, k int) *Packed {
	p := &Packed{}
	p.Pack(b, ldb, n, k)
	return p
}

// Pack repacks p from the n×k matrix b (row j at b[j*ldb]), reusing p's
// memory.
func (p *Packed) Pack(b []float32, ldb, n, k int) {
	p.reset(n, k)
	for j := range n {
		row := b[j*ldb : j*ldb+k]
		panel := p.data[(j/nr)*k*nr+j%nr:]
		for q, v := range row {
			panel[q*nr] = v
		}
	}
}

// PackT repacks p from the transpose of the k×n matrix b (row q at
// b[q*ldb]): B[j][q] = b[q*ldb+j]. Attention's P·V takes V this way.
func (p *Packed) PackT(b []float32, ldb, k, n int) {
	p.reset(n, k)
	for jp := 0; jp < n; jp += nr {
		w := min(nr, n-jp)
		panel := p.data[(jp/nr)*k*nr:]
		for q := range k {
			copy(panel[q*nr:q*nr+w], b[q*ldb+jp:q*ldb+jp+w])
		}
	}
}

func (p *Packed) reset(n, k int) {
	p.N, p.K = n, k
	size := (n + nr - 1) / nr * nr * k
	if cap(p.data) < size {
		p.data = make([]float32, size)
	} else {
		p.data = p.data[:size]
		clear(p.data)
	}
}

// Buf is one goroutine's scratch for Mul: the last rows of A, when fewer
// than 6, copied beside zero rows.
type Buf struct {
	a   []float32
	tmp [mr * 2 * nr]float32
}

// Mul sets C[i*ldc+j] = Σ_q A[i*lda+q]·B[j][q] + bias[j] for the m rows of
// A and the columns j in [j0, j1) of C (j0 a multiple of 16); bias may be
// nil. A is read in place (six rows at a time, each a sequential stream),
// B from its panels: 256-deep blocks of a 16-column panel stay in L1
// while the row tiles of up to 144 rows pass over them.
func (p *Packed) Mul(c []float32, ldc int, a []float32, lda, m int, bias []float32, j0, j1 int, buf *Buf) {
	if m <= 0 || j1 <= j0 {
		return
	}
	k := p.K
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+j1-1]
	full := m / mr * mr
	if h := m - full; h > 0 {
		// The kernel reads six rows: the edge rows go through buf.
		if len(buf.a) < mr*k {
			buf.a = make([]float32, mr*k)
		}
		clear(buf.a[h*k : mr*k])
		for r := range h {
			copy(buf.a[r*k:(r+1)*k], a[(full+r)*lda:(full+r)*lda+k])
		}
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc+j0 : i*ldc+j1]
		if bias != nil {
			copy(row, bias[j0:j1])
		} else {
			clear(row)
		}
	}
	// block is the row tiles [i0, i1) against the depth [q0, q0+kb) of
	// the cols columns from j: panel j, and panel j+1 too where the 6×32
	// kernel reads both at once.
	block := func(i0, i1, q0, kb, j, cols int) {
		bp := p.data[(j/nr)*k*nr+q0*nr:]
		for i := i0; i < i1; i += mr {
			h := min(mr, m-i)
			ai, la := a[i*lda+q0:], lda
			if h < mr {
				ai, la = buf.a[q0:], k
			}
			ci := i*ldc + j
			if cols == 2*nr {
				switch h {
				case mr:
					kernel2(kb, ai, la, bp, k*nr, c[ci:], ldc)
					continue
				case 4:
					// Four edge rows (a 16-token query: 6+6+4) have a kernel
					// of their own that reads them in place.
					kernel2x4(kb, a[i*lda+q0:], lda, bp, k*nr, c[ci:], ldc)
					continue
				}
				// Other edge rows through a full 6×32 tile in buf (the 6×16
				// kernel twice over would take twice as long).
				t := buf.tmp[:]
				clear(t)
				for r := range h {
					copy(t[r*2*nr:(r+1)*2*nr], c[ci+r*ldc:ci+r*ldc+2*nr])
				}
				kernel2(kb, ai, la, bp, k*nr, t, 2*nr)
				for r := range h {
					copy(c[ci+r*ldc:ci+r*ldc+2*nr], t[r*2*nr:(r+1)*2*nr])
				}
				continue
			}
			for x := range cols / nr {
				jj := j + x*nr
				w, bj, cj := min(nr, j1-jj), bp[x*k*nr:], ci+x*nr
				if h == mr && w == nr {
					kernel(kb, ai, la, bj, c[cj:], ldc)
					continue
				}
				// An edge tile: through a full 6×16 tile in buf.
				t := buf.tmp[:mr*nr]
				clear(t)
				for r := range h {
					copy(t[r*nr:r*nr+w], c[cj+r*ldc:cj+r*ldc+w])
				}
				kernel(kb, ai, la, bj, t, nr)
				for r := range h {
					copy(c[cj+r*ldc:cj+r*ldc+w], t[r*nr:r*nr+w])
				}
			}
		}
	}
	// span is the columns of the block at j: two panels where the 6×32
	// kernel runs.
	span := func(j int) int {
		if wideKernel && j+2*nr <= j1 {
			return 2 * nr
		}
		return nr
	}
	if m <= mc {
		// Few rows (a query): all of A stays in cache, so B is read once,
		// panel after panel in memory order, and the kernel's prefetch
		// always reaches the bytes that come next.
		for j := j0; j < j1; j += span(j) {
			for q0 := 0; q0 < k; q0 += kc {
				block(0, m, q0, min(kc, k-q0), j, span(j))
			}
		}
		return
	}
	for i0 := 0; i0 < m; i0 += mc {
		for q0 := 0; q0 < k; q0 += kc {
			for j := j0; j < j1; j += span(j) {
				block(i0, min(m, i0+mc), q0, min(kc, k-q0), j, span(j))
			}
		}
	}
}

// Workers runs products on the threads of a pool, each thread with its
// own Buf. One product at a time: a Workers value is not safe for
// concurrent calls.
type Workers struct {
	pool *pool.Pool
	bufs []Buf
	// The product of the open Mul, read by share (bound once, so that a
	// Mul allocates nothing).
	p             *Packed
	c, a, bias    []float32
	ldc, lda, m   int
	rows          bool // the shares split the rows of A, else B's panels
	shares, units int  // units: B's column blocks, or A's row tiles
	cols          int  // columns of one of B's blocks: one panel or two
	share         func(worker, chunk int)
}

// NewWorkers returns workers on the threads of p.
func NewWorkers(p *pool.Pool) *Workers {
	w := &Workers{pool: p, bufs: make([]Buf, p.Threads())}
	w.share = w.runShare
	return w
}

// Len is the number of workers.
func (w *Workers) Len() int { return len(w.bufs) }

// Buf is worker i's scratch, for callers that split work themselves.
func (w *Workers) Buf(i int) *Buf { return &w.bufs[i] }

// Mul sets C = A·Bᵀ + bias (C is m×p.N with row stride ldc) on all the
// threads: B's panels are split among them when there are enough, else
// the rows of A. The shares are a few per thread and claimed, so a thread
// held off the CPU costs its share, not the whole product.
func (w *Workers) Mul(p *Packed, c []float32, ldc int, a []float32, lda, m int, bias []float32) {
	panels := (p.N + nr - 1) / nr
	par := len(w.bufs)
	if flops := 2 * m * p.N * p.K; flops < 1<<16 || par <= 1 {
		p.Mul(c, ldc, a, lda, m, bias, 0, p.N, &w.bufs[0]) // a hand-off would cost more
		return
	}
	w.p, w.c, w.ldc, w.a, w.lda, w.m, w.bias = p, c, ldc, a, lda, m, bias
	tiles := (m + mr - 1) / mr
	w.rows = panels < 2*par && m >= 2*mr
	// Split B in pairs of panels where the 6×32 kernel runs: a share of an
	// odd number of panels ends in a 6×16 product at half its rate.
	w.cols = nr
	if wideKernel {
		w.cols = 2 * nr
	}
	w.units = (p.N + w.cols - 1) / w.cols
	if w.rows {
		w.units = tiles
	}
	w.shares = min(w.units, 4*par)
	w.pool.Run(w.shares, w.share)
	w.p, w.c, w.a, w.bias = nil, nil, nil, nil
}

// runShare computes share s of the open product on worker t's scratch.
func (w *Workers) runShare(t, s int) {
	lo, hi := s*w.units/w.shares, (s+1)*w.units/w.shares
	p := w.p
	if w.rows {
		i0, i1 := lo*mr, min(w.m, hi*mr)
		p.Mul(w.c[i0*w.ldc:], w.ldc, w.a[i0*w.lda:], w.lda, i1-i0, w.bias, 0, p.N, &w.bufs[t])
		return
	}
	p.Mul(w.c, w.ldc, w.a, w.lda, w.m, w.bias, lo*w.cols, min(p.N, hi*w.cols), &w.bufs[t])
}
