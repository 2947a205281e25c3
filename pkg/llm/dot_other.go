//go:build !amd64 || purego

package llm

func simdKernels() bool { return false }

func vnniKernels() bool { return false }

func avx512Kernels() bool { return false }

// useAVX512 is never called where avx512Kernels is false.
func (k *kernels) useAVX512() {}

func dotF32SIMD(a, b []float32) float32 { return dotF32Go(a, b) }

func dotF16SIMD(w []byte, x []float32) float32 { return dotF16(w, x) }

func dotQ8_0SIMD(w []byte, xq []int8, xd []float32) float32 { return dotQ8_0Go(w, xq, xd) }

func tileF32SIMD(w0, w1 []float32, x *[4][]float32, out *[8]float32) {
	for j := 0; j < 4; j++ {
		out[j] = dotF32Go(w0, x[j])
		out[4+j] = dotF32Go(w1, x[j])
	}
}

func tileQ8_0SIMD(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32) {
	for j := 0; j < 4; j++ {
		out[j] = dotQ8_0Go(w, xq[j], xd[j])
	}
}

func axpySIMD(dst, x []float32, a float32) { axpy(dst, x, a) }

func dotQ4KSIMD(w []byte, xq []int8, xd []float32, xs []int32) float32 { return dotQ4K(w, xq, xd, xs) }

func dotQ6KSIMD(w []byte, xq []int8, xd []float32) float32 { return dotQ6K(w, xq, xd) }

func tileQ8_0VNNI(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32) {
	tileQ8_0SIMD(w, xq, xd, out)
}

func dotQ4_0SIMD(w []byte, xq []int8, xd []float32) float32 { return dotQ4_0(w, xq, xd) }

// tileQ8_0x2VNNI is never selected without VNNI; this portable version
// keeps the kernel table complete.
func tileQ8_0x2VNNI(w0, w1 []byte, xu *[4][]uint8, xd *[4][]float32, out *[8]float32) {
	for j := 0; j < 4; j++ {
		xq := make([]int8, len(xu[j]))
		for i, u := range xu[j] {
			xq[i] = int8(u ^ 0x80)
		}
		out[j] = dotQ8_0Go(w0, xq, xd[j])
		out[4+j] = dotQ8_0Go(w1, xq, xd[j])
	}
}

func dotRowsF32SIMD(w []float32, stride int, x, out []float32) { dotRowsGo(w, stride, x, out) }

func axpyRowsSIMD(dst, v []float32, stride int, a []float32) { axpyRowsGo(dst, v, stride, a) }

func matvecF32SIMD(w, x, out []float32) {
	cols := len(x)
	for r := range out {
		out[r] = dotF32Go(w[r*cols:(r+1)*cols], x)
	}
}

func matvecQ8_0SIMD(w []byte, xq []int8, _ []uint8, xd []float32, out []float32) {
	rb := len(xd) * 34
	for r := range out {
		out[r] = dotQ8_0Go(w[r*rb:(r+1)*rb], xq, xd)
	}
}
