//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

//go:noescape
func kernel6x16AVX2(k int, a *float32, lda int, b, c *float32, ldc int)

var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel adds the product of six rows of A (row i at a[i*lda]) and a
// packed 16-column panel of B, both k deep, to the 6×16 tile at c (row
// stride ldc).
func kernel(k int, a []float32, lda int, b, c []float32, ldc int) {
	if !haveFMA {
		kernelGo(k, a, lda, b, c, ldc)
		return
	}
	_ = a[5*lda+k-1]
	_ = b[k*nr-1]
	_ = c[5*ldc+nr-1]
	kernel6x16AVX2(k, &a[0], lda, &b[0], &c[0], ldc)
}

// SIMD reports whether the assembly kernel runs here.
func SIMD() bool { return haveFMA }
