// Package gemm is the single-precision matrix product shared by the
// encoder's forward pass and the LLM's prefill: C = A·Bᵀ (+ bias) for
// activations A (m×k, one token a row) and weights B (n×k, the layout of
// PyTorch's Linear). B is packed once, at load, into panels of 16 columns;
// A is read in place, six rows at a time; a 6×16 register tile (AVX2 and
// FMA assembly on amd64, Go elsewhere) runs over blocks sized for the
// caches, after GotoBLAS and BLIS. (Packing A as they do cost a tenth of
// a 256-token encoder pass, most of it for attention's P·V, whose A is
// 256 wide for 32 outputs.)
package gemm

import "sync"

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
	tmp [mr * nr]float32
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
	for i0 := 0; i0 < m; i0 += mc {
		mb := min(mc, m-i0)
		for q0 := 0; q0 < k; q0 += kc {
			kb := min(kc, k-q0)
			for j := j0; j < j1; j += nr {
				w := min(nr, j1-j)
				bp := p.data[(j/nr)*k*nr+q0*nr:]
				for i := i0; i < i0+mb; i += mr {
					h := min(mr, m-i)
					ai, la := a[i*lda+q0:], lda
					if h < mr {
						ai, la = buf.a[q0:], k
					}
					ci := i*ldc + j
					if h == mr && w == nr {
						kernel(kb, ai, la, bp, c[ci:], ldc)
						continue
					}
					// An edge tile: through a full 6×16 tile in buf.
					t := buf.tmp[:]
					clear(t)
					for r := range h {
						copy(t[r*nr:r*nr+w], c[ci+r*ldc:ci+r*ldc+w])
					}
					kernel(kb, ai, la, bp, t, nr)
					for r := range h {
						copy(c[ci+r*ldc:ci+r*ldc+w], t[r*nr:r*nr+w])
					}
				}
			}
		}
	}
}

// Workers runs products on several goroutines, each with its own Buf. One
// product at a time: a Workers value is not safe for concurrent calls.
type Workers struct {
	bufs []Buf
}

// NewWorkers returns n ≥ 1 workers.
func NewWorkers(n int) *Workers { return &Workers{bufs: make([]Buf, max(1, n))} }

// Len is the number of workers.
func (w *Workers) Len() int { return len(w.bufs) }

// Buf is worker i's scratch, for callers that split work themselves.
func (w *Workers) Buf(i int) *Buf { return &w.bufs[i] }

// Mul sets C = A·Bᵀ + bias (C is m×p.N with row stride ldc) on all the
// workers: the panels of B are split among them when there are enough,
// else the rows of A.
func (w *Workers) Mul(p *Packed, c []float32, ldc int, a []float32, lda, m int, bias []float32) {
	panels := (p.N + nr - 1) / nr
	par := len(w.bufs)
	if flops := 2 * m * p.N * p.K; flops < 1<<18 {
		par = 1 // below ~10 µs of work a hand-off costs more than it saves
	}
	if par <= 1 {
		p.Mul(c, ldc, a, lda, m, bias, 0, p.N, &w.bufs[0])
		return
	}
	// Worker t computes columns [j0(t), j0(t+1)) or rows [i0(t), i0(t+1));
	// the caller's goroutine takes the first share.
	var share func(t int)
	if panels >= 2*par || m < 2*mr {
		par = min(par, panels)
		share = func(t int) {
			j0, j1 := t*panels/par*nr, min(p.N, (t+1)*panels/par*nr)
			p.Mul(c, ldc, a, lda, m, bias, j0, j1, &w.bufs[t])
		}
	} else {
		tiles := (m + mr - 1) / mr
		share = func(t int) {
			i0, i1 := t*tiles/par*mr, min(m, (t+1)*tiles/par*mr)
			p.Mul(c[i0*ldc:], ldc, a[i0*lda:], lda, i1-i0, bias, 0, p.N, &w.bufs[t])
		}
	}
	var wg sync.WaitGroup
	for t := 1; t < par; t++ {
		wg.Go(func() { share(t) })
	}
	share(0)
	wg.Wait()
}
