//go:build !amd64 || purego

package gemm

func kernel(k int, a []float32, lda int, b, c []float32, ldc int) { kernelGo(k, a, lda, b, c, ldc) }

// wideKernel: no 6×32 kernel here.
var wideKernel = false

func kernel2(k int, a []float32, lda int, b []float32, stride int, c []float32, ldc int) {
	kernelGo(k, a, lda, b, c, ldc)
	kernelGo(k, a, lda, b[stride:], c[nr:], ldc)
}

// SIMD reports whether the assembly kernel runs here.
func SIMD() bool { return false }

// kernel2x4 is never called here: Mul runs it only where wideKernel is set.
func kernel2x4(k int, a []float32, lda int, b []float32, stride int, c []float32, ldc int) {
	panic("gemm: no 4×32 kernel on this platform")
}
