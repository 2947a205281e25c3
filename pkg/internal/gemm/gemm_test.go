package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tributary-rag/tributary/pkg/cputime"
	"github.com/tributary-rag/tributary/pkg/internal/pool"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	return v
}

// naive is C = A·Bᵀ + bias in float64.
func naive(a, b, bias []float32, m, n, k int) []float64 {
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			s := 0.0
			if bias != nil {
				s = float64(bias[j])
			}
			for q := range k {
				s += float64(a[i*k+q]) * float64(b[j*k+q])
			}
			c[i*n+j] = s
		}
	}
	return c
}

func check(t *testing.T, got []float32, ldc int, want []float64, m, n, k int) {
	t.Helper()
	tol := 1e-5 * math.Sqrt(float64(k)) * 4
	for i := range m {
		for j := range n {
			if d := math.Abs(float64(got[i*ldc+j]) - want[i*n+j]); d > tol {
				t.Fatalf("C[%d][%d] = %g, want %g (|Δ| %g > %g)", i, j, got[i*ldc+j], want[i*n+j], d, tol)
			}
		}
	}
}

// TestMulOddSizes checks every path (edge tiles in both directions,
// several k blocks, both splits among workers) against a float64
// reference.
func TestMulOddSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][3]int{{1, 1, 1}, {1, 16, 1}, {5, 17, 3}, {6, 16, 256}, {7, 33, 257}, {13, 100, 300}, {145, 47, 513}, {300, 40, 64}, {16, 384, 384}, {64, 1536, 384}} {
		m, n, k := s[0], s[1], s[2]
		a, b, bias := randVec(r, m*k), randVec(r, n*k), randVec(r, n)
		want := naive(a, b, bias, m, n, k)
		p := Pack(b, k, n, k)
		// A with a row stride wider than k, as attention reads one head's
		// columns of Q.
		lda := k + 5
		aw := make([]float32, m*lda)
		for i := range m {
			copy(aw[i*lda:], a[i*k:(i+1)*k])
		}
		for _, workers := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%dx%dx%d/workers=%d", m, n, k, workers), func(t *testing.T) {
				// A wider C (stride n+3) with sentinels checks that
				// nothing outside the product is written.
				ldc := n + 3
				c := make([]float32, m*ldc)
				for i := range c {
					c[i] = 42
				}
				newWorkers(t, workers).Mul(p, c, ldc, aw, lda, m, bias)
				check(t, c, ldc, want, m, n, k)
				for i := range m {
					for j := n; j < ldc; j++ {
						if c[i*ldc+j] != 42 {
							t.Fatalf("C[%d][%d] outside the product written: %g", i, j, c[i*ldc+j])
						}
					}
				}
			})
		}
	}
}

// TestPackT checks B given transposed (k×n), with strides.
func TestPackT(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m, n, k := 11, 37, 29
	a := randVec(r, m*k)
	bt := randVec(r, k*(n+5)) // k rows of n+5, the first n used
	b := make([]float32, n*k)
	for j := range n {
		for q := range k {
			b[j*k+q] = bt[q*(n+5)+j]
		}
	}
	var p Packed
	p.Pack(randVec(r, 40*50), 50, 40, 50) // reuse must not leak old values
	p.PackT(bt, n+5, k, n)
	c := make([]float32, m*n)
	var buf Buf
	p.Mul(c, n, a, k, m, nil, 0, n, &buf)
	check(t, c, n, naive(a, b, nil, m, n, k), m, n, k)
}

// TestKernelGo runs the portable kernel against the one in use.
func TestKernelGo(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{1, 7, 256} {
		a, b := randVec(r, 5*(k+3)+k), randVec(r, k*nr)
		c1, c2 := randVec(r, mr*20), make([]float32, mr*20)
		copy(c2, c1)
		kernel(k, a, k+3, b, c1, 20)
		kernelGo(k, a, k+3, b, c2, 20)
		for i := range c1 {
			if math.Abs(float64(c1[i]-c2[i])) > 1e-4 {
				t.Fatalf("k=%d: element %d: %g vs %g", k, i, c1[i], c2[i])
			}
		}
	}
}

// BenchmarkMul reports GFLOP/s of square products and the encoder's
// shapes, per second of wall time and per second of CPU time (all
// threads).
func BenchmarkMul(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][3]int{{1024, 1024, 1024}, {256, 1536, 384}, {256, 384, 1536}, {16, 384, 384}} {
		m, n, k := s[0], s[1], s[2]
		a, w := randVec(r, m*k), randVec(r, n*k)
		p := Pack(w, k, n, k)
		c := make([]float32, m*n)
		for _, workers := range []int{1, 2} {
			for _, wide := range kernels() {
				name := fmt.Sprintf("%dx%dx%d/threads=%d", m, n, k, workers)
				if !wide {
					name += "/6x16" // the kernel of CPUs without AVX-512
				}
				b.Run(name, func(b *testing.B) {
					defer func(w bool) { wideKernel = w }(wideKernel)
					wideKernel = wide
					ws := newWorkers(b, workers)
					cpu0 := cputime.Process()
					for b.Loop() {
						ws.Mul(p, c, n, a, k, m, nil)
					}
					flop := 2 * float64(m*n*k) * float64(b.N)
					b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(flop/(cputime.Process()-cpu0).Seconds()/1e9, "GFLOP/cpu-s")
				})
			}
		}
	}
}

// TestRowsIndependent checks that a row's result does not depend on the
// rows beside it or on the split among workers, bit for bit: the encoder
// promises that a text embeds the same alone or in a batch.
func TestRowsIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	m, n, k := 157, 200, 300
	a, b, bias := randVec(r, m*k), randVec(r, n*k), randVec(r, n)
	p := Pack(b, k, n, k)
	all := make([]float32, m*n)
	newWorkers(t, 1).Mul(p, all, n, a, k, m, bias)
	for _, workers := range []int{2, 3} {
		c := make([]float32, m*n)
		newWorkers(t, workers).Mul(p, c, n, a, k, m, bias)
		if !slices.Equal(c, all) {
			t.Fatalf("%d workers differ from one", workers)
		}
	}
	for _, i := range []int{0, 5, 6, 100, m - 1} {
		c := make([]float32, n)
		newWorkers(t, 2).Mul(p, c, n, a[i*k:(i+1)*k], k, 1, bias)
		if !slices.Equal(c, all[i*n:(i+1)*n]) {
			t.Fatalf("row %d alone differs from row %d of %d", i, i, m)
		}
	}
}

// BenchmarkMulCold times a 16-row product (a query's tokens) whose weights
// come from memory, as in an encoder pass: it cycles through 48 different
// 1536×384 matrices (113 MB, more than the caches hold).
func BenchmarkMulCold(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 9))
	const m, n, k, mats = 16, 1536, 384, 48
	a := randVec(r, m*k)
	w := randVec(r, n*k)
	ps := make([]*Packed, mats)
	for i := range ps {
		ps[i] = Pack(w, k, n, k)
	}
	c := make([]float32, m*n)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("%dx%dx%d/threads=%d", m, n, k, workers), func(b *testing.B) {
			ws := newWorkers(b, workers)
			i := 0
			for b.Loop() {
				ws.Mul(ps[i%mats], c, n, a, k, m, nil)
				i++
			}
			flop := 2 * float64(m*n*k) * float64(b.N)
			b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(float64(n*k*4)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

func newWorkers(tb testing.TB, threads int) *Workers {
	p := pool.New(threads)
	tb.Cleanup(p.Close)
	return NewWorkers(p)
}

// TestWideKernelSame checks that the 6×32 kernel (where the CPU has it)
// gives the 6×16 kernel's results bit for bit, on every path: pairs of
// panels with a single one left over, edge rows, several depth blocks, few
// rows and many.
func TestWideKernelSame(t *testing.T) {
	if !wideKernel {
		t.Skip("no 6×32 kernel on this CPU") // the 6×16 kernel is then the only one, tested above
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range [][3]int{{6, 32, 5}, {7, 48, 300}, {10, 64, 40}, {16, 1536, 384}, {150, 80, 600}, {300, 33, 64}} {
		m, n, k := s[0], s[1], s[2]
		a, b, bias := randVec(r, m*k), randVec(r, n*k), randVec(r, n)
		p := Pack(b, k, n, k)
		for _, workers := range []int{1, 2} {
			wide := make([]float32, m*n)
			newWorkers(t, workers).Mul(p, wide, n, a, k, m, bias)
			check(t, wide, n, naive(a, b, bias, m, n, k), m, n, k)
			wideKernel = false
			narrow := make([]float32, m*n)
			newWorkers(t, workers).Mul(p, narrow, n, a, k, m, bias)
			wideKernel = true
			if !slices.Equal(wide, narrow) {
				t.Fatalf("%dx%dx%d, %d workers: the 6×32 kernel differs from the 6×16", m, n, k, workers)
			}
		}
	}
}

// kernels is the values of wideKernel this CPU can run: the 6×32 kernel's
// and, where it has one, the 6×16's too.
func kernels() []bool {
	if wideKernel {
		return []bool{true, false}
	}
	return []bool{false}
}
