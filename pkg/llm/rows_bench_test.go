package llm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// BenchmarkMatvec compares, on one thread, the batch-1 F32 block kernel
// with one single-row dot product per row, on a 2048×768 weight (6.3 MB,
// in the last-level cache) and a 32768×768 one (100 MB, the classifier's
// size, streamed from memory as decoding streams every weight); MB/s is
// weight bytes read.
func BenchmarkMatvec(b *testing.B) {
	k := newKernels(bestISA())
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

// BenchmarkMatMulBatch8 measures, on one thread, the batched products of
// eight decode streams (F32 and Q8_0, 768 columns) with each kernel family
// the CPU runs, on 2048 rows (6 MB of F32, in cache) and 32768 (100 MB,
// streamed from memory as a decode step streams the model).
func BenchmarkMatMulBatch8(b *testing.B) {
	const cols, n = 768, 8
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, rows := range []int{2048, 32768} {
		vals := make([]float32, rows*cols)
		for i := range vals {
			vals[i] = float32(rng.NormFloat64())
		}
		out := make([]float32, n*rows)
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
			data := gguf.EncodeF32(vals)
			if typ == gguf.Q8_0 {
				data = gguf.QuantizeQ8_0(vals)
			}
			w, err := NewWeight("w", typ, rows, cols, data)
			if err != nil {
				b.Fatal(err)
			}
			for _, isa := range supportedISAs()[1:] {
				b.Run(fmt.Sprintf("%s/%d/%v", typ, rows, isa), func(b *testing.B) {
					c := NewCPU(1)
					defer c.Close()
					c.k = newKernels(isa)
					for b.Loop() {
						c.MatMul(out, w, x, n)
					}
					b.ReportMetric(2*float64(rows*cols*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkMatvecQ8 measures, on one thread, the batch-1 Q8_0 block kernel
// of each kernel family on a 4096×768 weight (3.3 MB, in cache) and a
// 131072×768 one (107 MB, streamed from memory); MB/s is weight bytes
// read.
func BenchmarkMatvecQ8(b *testing.B) {
	const cols = 768
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	var q q8Rows
	q.quantize(x, 1, cols)
	xq, xd, _ := q.row(0)
	xu, _ := q.rowU(0)
	for _, size := range []struct {
		name string
		rows int
	}{{"3MB", 4096}, {"13MB", 16384}, {"27MB", 32768}, {"53MB", 65536}, {"107MB", 131072}} {
		vals := make([]float32, size.rows*cols)
		for i := range vals {
			vals[i] = float32(rng.NormFloat64())
		}
		w := gguf.QuantizeQ8_0(vals)
		out := make([]float32, size.rows)
		for _, isa := range supportedISAs()[1:] {
			k := newKernels(isa)
			b.Run(size.name+"/"+isa.String(), func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					k.matvecQ8(w, xq, xu, xd, out)
				}
			})
		}
	}
}
