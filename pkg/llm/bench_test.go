package llm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// BenchmarkMatMul times the CPU backend's matmul on a 2048×768 weight (the
// FFN shape of a 110M Llama) for each weight type and batch size, on one
// thread; b.SetBytes counts weight bytes so MB/s is streaming speed.
func BenchmarkMatMul(b *testing.B) {
	const rows, cols = 2048, 768
	rng := rand.New(rand.NewPCG(1, 1))
	vals := make([]float32, rows*cols)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
	}
	weights := map[gguf.TensorType][]byte{gguf.F32: gguf.EncodeF32(vals), gguf.Q8_0: gguf.QuantizeQ8_0(vals)}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		w, err := NewWeight("w", typ, rows, cols, weights[typ])
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{1, 8} {
			for _, simd := range []bool{true, false} {
				b.Run(fmt.Sprintf("%s/batch%d/asm=%v", typ, n, simd), func(b *testing.B) {
					c := NewCPU(1)
					if !simd {
						c = NewPortableCPU(1)
					}
					x := make([]float32, n*cols)
					for i := range x {
						x[i] = float32(rng.NormFloat64())
					}
					out := make([]float32, n*rows)
					b.SetBytes(int64(len(w.Data)))
					for b.Loop() {
						c.MatMul(out, w, x, n)
					}
					b.ReportMetric(2*float64(rows*cols*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkDotF32 compares the float dot product kernels on an
// L1-resident 768-element row (the compute side of the F32 matmul).
func BenchmarkDotF32(b *testing.B) {
	a := make([]float32, 768)
	x := make([]float32, 768)
	for i := range a {
		a[i], x[i] = float32(i%13)*0.1, float32(i%7)*0.2
	}
	k := newKernels(bestISA())
	for _, tt := range []struct {
		name string
		f    func(a, b []float32) float32
	}{{"selected", k.dotF32}, {"go", dotF32Go}} {
		b.Run(tt.name, func(b *testing.B) {
			var s float32
			for b.Loop() {
				s += tt.f(a, x)
			}
			b.ReportMetric(2*768*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			_ = s
		})
	}
}
