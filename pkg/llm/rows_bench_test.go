package llm

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkRowKernels compares, on one thread, the batch-1 four-row F32
// kernel with one single-row dot product per row over a 2048×768 weight
// (6.3 MB).
func BenchmarkRowKernels(b *testing.B) {
	k := newKernels(simdKernels())
	if k.rowsF32 == nil {
		b.Skip("no row kernels")
	}
	const rows, cols = 2048, 768
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	wf := make([]float32, rows*cols)
	for i := range wf {
		wf[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, rows)
	b.Run("F32/rows4", func(b *testing.B) {
		var ws [4][]float32
		var acc [4]float32
		for b.Loop() {
			for r := 0; r < rows; r += 4 {
				for j := range ws {
					ws[j] = wf[(r+j)*cols : (r+j+1)*cols]
				}
				k.rowsF32(&ws, x, &acc)
				copy(out[r:], acc[:])
			}
		}
	})
	b.Run("F32/single", func(b *testing.B) {
		for b.Loop() {
			for r := 0; r < rows; r++ {
				out[r] = k.dotF32(wf[r*cols:(r+1)*cols], x)
			}
		}
	})
}
