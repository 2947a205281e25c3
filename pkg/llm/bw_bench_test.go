package llm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// BenchmarkMatMulMemory times batch-1 products whose weights come from
// memory, as in decode: it cycles through matrices of a 110M model's
// shapes (768 → 2048 and 2048 → 768) totalling more than the caches, on
// one and two threads, and reports the weight bytes read per second.
func BenchmarkMatMulMemory(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		var ws []*Weight
		var bytes int64
		n := 24 // 151 MB of F32
		if typ == gguf.Q8_0 {
			n = 96 // 160 MB of Q8_0
		}
		for i := range n {
			rows, cols := 2048, 768
			if i%2 == 1 {
				rows, cols = 768, 2048
			}
			vals := make([]float32, rows*cols)
			for j := range vals {
				vals[j] = float32(rng.NormFloat64())
			}
			data := gguf.EncodeF32(vals)
			if typ == gguf.Q8_0 {
				data = gguf.QuantizeQ8_0(vals)
			}
			w, err := NewWeight("w", typ, rows, cols, data)
			if err != nil {
				b.Fatal(err)
			}
			ws = append(ws, w)
			bytes += int64(len(data))
		}
		x := make([]float32, 2048)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		out := make([]float32, 2048)
		for _, threads := range []int{1, 2} {
			for _, isa := range supportedISAs()[1:] {
				b.Run(fmt.Sprintf("%s/threads=%d/%s", typ, threads, isa), func(b *testing.B) {
					c := NewCPU(threads)
					c.k = newKernels(isa)
					defer c.Close()
					for b.Loop() {
						for _, w := range ws {
							c.MatMul(out[:w.Rows], w, x[:w.Cols], 1)
						}
					}
					b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				})
			}
		}
	}
}
