//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

//go:noescape
func kernel6x16AVX2(k int, a *float32, lda int, b, c *float32, ldc int)

//go:noescape
func kernel6x32AVX512(k int, a *float32, lda int, b *float32, stride int, c *float32, ldc int)

//go:noescape
func kernel4x32AVX512(k int, a *float32, lda int, b *float32, stride int, c *float32, ldc int)

var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// wideKernel is whether Mul runs the 6×32 AVX-512 kernel on pairs of
// panels (twice the FLOPs per instruction; on a CPU with 512-bit FMA
// units twice the rate). It sums each element in the same order, with the
// same fused multiply-adds, as the 6×16 kernel: the results are identical.
// A variable so that tests run both.
var wideKernel = haveFMA && cpu.X86.HasAVX512F

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

// kernel2 is kernel on two panels, the second stride floats after the
// first, into the 6×32 tile at c.
func kernel2(k int, a []float32, lda int, b []float32, stride int, c []float32, ldc int) {
	_ = a[5*lda+k-1]
	_ = b[stride+k*nr-1]
	_ = c[5*ldc+2*nr-1]
	kernel6x32AVX512(k, &a[0], lda, &b[0], stride, &c[0], ldc)
}

// kernel2x4 is kernel2 on four rows of A into the 4×32 tile at c.
func kernel2x4(k int, a []float32, lda int, b []float32, stride int, c []float32, ldc int) {
	_ = a[3*lda+k-1]
	_ = b[stride+k*nr-1]
	_ = c[3*ldc+2*nr-1]
	kernel4x32AVX512(k, &a[0], lda, &b[0], stride, &c[0], ldc)
}

// SIMD reports whether the assembly kernel runs here.
func SIMD() bool { return haveFMA }
