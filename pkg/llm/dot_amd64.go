//go:build amd64 && !purego

package llm

import (
	"encoding/binary"
	"unsafe"

	"github.com/tributary-rag/tributary/pkg/gguf"

	"golang.org/x/sys/cpu"
)

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

//go:noescape
func dotF32Tile2x4(w0, w1, x0, x1, x2, x3 *float32, n int, out *[8]float32)

//go:noescape
func axpyAVX2(dst, x *float32, a float32, n int)

//go:noescape
func q4kBlockAVX2(qs *byte, x *int8, scales *[8]float32) float32

//go:noescape
func q6kBlockAVX2(blk *byte, x *int8, scales *[16]float32) float32

//go:noescape
func dotQ4_0AVX2(w *byte, xq *int8, xd *float32, nb int) float32

//go:noescape
func dotF16AVX2(w *byte, x *float32, n int) float32

//go:noescape
func dotQ8_0AVX2(w *byte, xq *int8, xd *float32, nb int) float32

//go:noescape
func dotQ8_0Tile1x4(w *byte, x0, x1, x2, x3 *int8, d0, d1, d2, d3 *float32, nb int, out *[4]float32)

//go:noescape
func dotQ8_0Tile2x4VNNI(w0, w1 *byte, x0, x1, x2, x3 *uint8, d0, d1, d2, d3 *float32, nb int, out *[8]float32)

//go:noescape
func dotQ8_0Tile1x4VNNI(w *byte, x0, x1, x2, x3 *int8, d0, d1, d2, d3 *float32, nb int, out *[4]float32)

// vnniKernels reports whether the AVX512-VNNI tile (on 256-bit registers)
// can run here.
func vnniKernels() bool {
	return simdKernels() && cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL
}

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
	tileQ8_0(w, xq, xd, out, dotQ8_0Tile1x4)
}

// tileQ8_0VNNI is tileQ8_0SIMD with VPDPBUSD; the results are identical.
func tileQ8_0VNNI(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32) {
	tileQ8_0(w, xq, xd, out, dotQ8_0Tile1x4VNNI)
}

func tileQ8_0(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32,
	kernel func(w *byte, x0, x1, x2, x3 *int8, d0, d1, d2, d3 *float32, nb int, out *[4]float32)) {
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
	kernel(&w[0], &xq[0][0], &xq[1][0], &xq[2][0], &xq[3][0], &xd[0][0], &xd[1][0], &xd[2][0], &xd[3][0], nb, out)
}

// axpySIMD computes dst += a*x.
func axpySIMD(dst, x []float32, a float32) {
	n := len(dst)
	x = x[:n]
	m := n &^ 7
	if m > 0 {
		axpyAVX2(&dst[0], &x[0], a, m)
	}
	for i := m; i < n; i++ {
		dst[i] += a * x[i]
	}
}

// dotQ4KSIMD is dotQ4K with the integer work of each block in assembly.
func dotQ4KSIMD(w []byte, xq []int8, xd []float32, xs []int32) float32 {
	nb := len(xd) / 8
	_ = w[nb*gguf.BlockQ4_KSize-1]
	_ = xq[nb*256-1]
	_ = xs[nb*8-1]
	var scales [8]float32
	var s float32
	for b := 0; b < nb; b++ {
		blk := w[b*gguf.BlockQ4_KSize : (b+1)*gguf.BlockQ4_KSize]
		d := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk))
		dmin := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk[2:]))
		var mins float32
		for j := 0; j < 8; j++ {
			sc, m := gguf.ScaleMinK4(j, blk[4:16])
			scales[j] = d * float32(sc) * xd[b*8+j]
			mins += dmin * float32(m) * xd[b*8+j] * float32(xs[b*8+j])
		}
		s += q4kBlockAVX2(&blk[16], &xq[b*256], &scales) - mins
	}
	return s
}

// dotQ6KSIMD is dotQ6K with the integer work of each block in assembly.
func dotQ6KSIMD(w []byte, xq []int8, xd []float32) float32 {
	nb := len(xd) / 8
	_ = w[nb*gguf.BlockQ6_KSize-1]
	_ = xq[nb*256-1]
	var scales [16]float32
	var s float32
	for b := 0; b < nb; b++ {
		blk := w[b*gguf.BlockQ6_KSize : (b+1)*gguf.BlockQ6_KSize]
		d := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk[208:]))
		sc := blk[192:208]
		for grp := 0; grp < 8; grp++ {
			h, g := grp/4, grp%4
			f := d * xd[b*8+grp]
			scales[2*grp] = f * float32(int8(sc[8*h+2*g]))
			scales[2*grp+1] = f * float32(int8(sc[8*h+2*g+1]))
		}
		s += q6kBlockAVX2(&blk[0], &xq[b*256], &scales)
	}
	return s
}

func dotQ4_0SIMD(w []byte, xq []int8, xd []float32) float32 {
	nb := len(xd)
	if nb == 0 {
		return 0
	}
	_ = w[nb*gguf.BlockQ4_0Size-1]
	_ = xq[nb*32-1]
	return dotQ4_0AVX2(&w[0], &xq[0], &xd[0], nb)
}

// tileQ8_0x2VNNI computes out[4r+j] = w_r·x_j for Q8_0 rows w0, w1 and four
// activation rows given as x+128 (xu) with their scales, each result
// bit-identical to dotQ8_0SIMD.
func tileQ8_0x2VNNI(w0, w1 []byte, xu *[4][]uint8, xd *[4][]float32, out *[8]float32) {
	tileQ8_0x2(dotQ8_0Tile2x4VNNI, w0, w1, xu, xd, out)
}

// tileQ8_0x2 checks the bounds of a 2×4 Q8_0 tile and runs it on kernel
// (the ymm or zmm one).
func tileQ8_0x2(kernel func(w0, w1 *byte, x0, x1, x2, x3 *uint8, d0, d1, d2, d3 *float32, nb int, out *[8]float32),
	w0, w1 []byte, xu *[4][]uint8, xd *[4][]float32, out *[8]float32) {
	nb := len(xd[0])
	if nb == 0 {
		*out = [8]float32{}
		return
	}
	_ = w0[nb*34-1]
	_ = w1[nb*34-1]
	for j := 0; j < 4; j++ {
		_ = xu[j][nb*32-1]
		_ = xd[j][nb-1]
	}
	kernel(&w0[0], &w1[0], &xu[0][0], &xu[1][0], &xu[2][0], &xu[3][0], &xd[0][0], &xd[1][0], &xd[2][0], &xd[3][0], nb, out)
}
