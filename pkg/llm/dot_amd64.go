//go:build amd64

package llm

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

//go:noescape
func dotF32Tile2x4(w0, w1, x0, x1, x2, x3 *float32, n int, out *[8]float32)

//go:noescape
func dotF16AVX2(w *byte, x *float32, n int) float32

//go:noescape
func dotQ8_0AVX2(w *byte, xq *int8, xd *float32, nb int) float32

//go:noescape
func dotQ8_0Tile1x4(w *byte, x0, x1, x2, x3 *int8, d0, d1, d2, d3 *float32, nb int, out *[4]float32)

// simdKernels reports whether the AVX2/FMA/F16C kernels can run here.
func simdKernels() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C }

func dotF32SIMD(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	m := n &^ 7
	var s float32
	if m > 0 {
		s = dotF32AVX2(&a[0], &b[0], m)
	}
	for i := m; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

// tileF32SIMD computes out[4*r+j] = w_r·x_j for rows w0, w1 and
// activations x[0..3], each product bit-identical to dotF32SIMD.
func tileF32SIMD(w0, w1 []float32, x *[4][]float32, out *[8]float32) {
	n := len(w0)
	w1 = w1[:n]
	for j := range x {
		x[j] = x[j][:n]
	}
	m := n &^ 7
	if m > 0 {
		dotF32Tile2x4(&w0[0], &w1[0], &x[0][0], &x[1][0], &x[2][0], &x[3][0], m, out)
	} else {
		*out = [8]float32{}
	}
	for i := m; i < n; i++ {
		for j := 0; j < 4; j++ {
			out[j] += w0[i] * x[j][i]
			out[4+j] += w1[i] * x[j][i]
		}
	}
}

func dotF16SIMD(w []byte, x []float32) float32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	_ = w[2*n-1]
	m := n &^ 7
	var s float32
	if m > 0 {
		s = dotF16AVX2(&w[0], &x[0], m)
	}
	if m < n {
		s += dotF16(w[2*m:], x[m:])
	}
	return s
}

func dotQ8_0SIMD(w []byte, xq []int8, xd []float32) float32 {
	nb := len(xd)
	if nb == 0 {
		return 0
	}
	_ = w[nb*34-1]
	_ = xq[nb*32-1]
	return dotQ8_0AVX2((*byte)(unsafe.Pointer(&w[0])), &xq[0], &xd[0], nb)
}

// tileQ8_0SIMD computes out[j] = w·x_j for one Q8_0 row and four
// quantized activation rows, each bit-identical to dotQ8_0SIMD.
func tileQ8_0SIMD(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32) {
	nb := len(xd[0])
	if nb == 0 {
		*out = [4]float32{}
		return
	}
	_ = w[nb*34-1]
	for j := 0; j < 4; j++ {
		_ = xq[j][nb*32-1]
		_ = xd[j][nb-1]
	}
	dotQ8_0Tile1x4(&w[0], &xq[0][0], &xq[1][0], &xq[2][0], &xq[3][0], &xd[0][0], &xd[1][0], &xd[2][0], &xd[3][0], nb, out)
}
