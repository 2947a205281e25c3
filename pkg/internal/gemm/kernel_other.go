//go:build !amd64 || purego

package gemm

func kernel(k int, a []float32, lda int, b, c []float32, ldc int) { kernelGo(k, a, lda, b, c, ldc) }

// SIMD reports whether the assembly kernel runs here.
func SIMD() bool { return false }
