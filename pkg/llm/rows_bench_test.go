package llm

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMatvec compares, on one thread, the batch-1 F32 block kernel
// with one single-row dot product per row, on a 2048×768 weight (6.3 MB,
// in the last-level cache) and a 32768×768 one (100 MB, the classifier's
// size, streamed from memory as decoding streams every weight); MB/s is
// weight bytes read.
func BenchmarkMatvec(b *testing.B) {
	k := newKernels(simdKernels())
	if k.matvecF32 == nil {
		b.Skip("no batch-1 block kernel")
	}
	const cols = 768
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, size := range []struct {
		name string
		rows int
	}{{"6MB", 2048}, {"100MB", 32768}} {
		rows := size.rows
		wf := make([]float32, rows*cols)
		for i := range wf {
			wf[i] = float32(rng.NormFloat64())
		}
		out := make([]float32, rows)
		b.Run(size.name+"/block", func(b *testing.B) {
			b.SetBytes(int64(4 * len(wf)))
			for b.Loop() {
				k.matvecF32(wf, x, out)
			}
		})
		b.Run(size.name+"/single", func(b *testing.B) {
			b.SetBytes(int64(4 * len(wf)))
			for b.Loop() {
				for r := 0; r < rows; r++ {
					out[r] = k.dotF32(wf[r*cols:(r+1)*cols], x)
				}
			}
		})
	}
}
