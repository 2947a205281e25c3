//go:build amd64 && !purego

package llm

import "golang.org/x/sys/cpu"

//go:noescape
func dotF32Tile4x8AVX512(w *float32, wstride int, x *float32, xstride int, n int, out *[32]float32)

//go:noescape
func dotQ8_0Rows2BlockAVX512(w *byte, xu *uint8, xd *float32, rows, nb, stride int, out *float32)

//go:noescape
func dotQ8_0Tile2x4AVX512(w0, w1 *byte, x0, x1, x2, x3 *uint8, d0, d1, d2, d3 *float32, nb int, out *[8]float32)

//go:noescape
func quantizeQ8AVX512(x *float32, qs *int8, qu *uint8, d *float32, sum *int32, nb int)

// avx512Kernels reports whether the 512-bit kernels can run here (x/sys/cpu
// also checks that the OS saves the zmm state).
func avx512Kernels() bool {
	return simdKernels() && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI
}

// useAVX512 replaces the kernels that have 512-bit versions; the others
// stay AVX2.
func (k *kernels) useAVX512() {
	k.tileF32x8 = tileF32x8AVX512
	k.tileQ8x2 = tileQ8_0x2AVX512
	k.matvecQ8 = matvecQ8_0AVX512
	k.quantQ8 = quantizeQ8_AVX512
}

// quantizeQ8_AVX512 is quantizeQ8Go in 512-bit registers; the results are
// identical.
func quantizeQ8_AVX512(x []float32, qs []int8, qu []uint8, d []float32, sum []int32) {
	nb := len(d)
	if nb == 0 {
		return
	}
	_ = x[nb*32-1]
	_ = qs[nb*32-1]
	_ = qu[nb*32-1]
	_ = sum[nb-1]
	quantizeQ8AVX512(&x[0], &qs[0], &qu[0], &d[0], &sum[0], nb)
}

// tileF32x8AVX512 computes out[8r+j] = w_r·x_j for the four rows of w and
// the eight rows of x, all cols wide, each product bit-identical to
// dotF32SIMD.
func tileF32x8AVX512(w, x []float32, cols int, out *[32]float32) {
	*out = [32]float32{}
	if cols == 0 {
		return
	}
	w = w[:4*cols]
	x = x[:8*cols]
	m := cols &^ 7
	if m > 0 {
		dotF32Tile4x8AVX512(&w[0], 4*cols, &x[0], 4*cols, m, out)
	}
	for i := m; i < cols; i++ {
		for r := 0; r < 4; r++ {
			for j := 0; j < 8; j++ {
				out[8*r+j] += w[r*cols+i] * x[j*cols+i]
			}
		}
	}
}

// tileQ8_0x2AVX512 is tileQ8_0x2VNNI on 512-bit registers; the results
// are identical.
func tileQ8_0x2AVX512(w0, w1 []byte, xu *[4][]uint8, xd *[4][]float32, out *[8]float32) {
	tileQ8_0x2(dotQ8_0Tile2x4AVX512, w0, w1, xu, xd, out)
}

// matvecQ8_0AVX512 is matvecQ8_0SIMD two rows per zmm register, reading
// the activations offset by 128 (xu); an odd last row takes the AVX2
// kernel. Results are identical.
func matvecQ8_0AVX512(w []byte, xq []int8, xu []uint8, xd []float32, out []float32) {
	rows, nb := len(out), len(xd)
	if rows == 0 {
		return
	}
	if nb == 0 {
		clear(out)
		return
	}
	rb := nb * 34
	_ = w[rows*rb-1]
	_ = xq[nb*32-1]
	_ = xu[nb*32-1]
	r2 := rows &^ 1
	if r2 > 0 {
		dotQ8_0Rows2BlockAVX512(&w[0], &xu[0], &xd[0], r2, nb, rb, &out[0])
	}
	if r2 < rows {
		dotQ8_0RowsBlock(&w[r2*rb], &xq[0], &xd[0], 1, nb, rb, &out[r2])
	}
}
