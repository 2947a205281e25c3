package llm

import (
	"math/rand/v2"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// TestDecodeStepAllocatesNothing checks that a decode step (batch 1, one
// more cached position each time) allocates nothing once its buffers have
// grown: per-step garbage costs a collection's worth of time on both
// threads every few hundred tokens. F32 and Q8_0 take different kernels.
func TestDecodeStepAllocatesNothing(t *testing.T) {
	for _, path := range []string{storiesPath, "testdata/llama_gqa_q8_0.gguf"} {
		m, err := Load(path, WithThreads(2))
		if err != nil {
			t.Fatal(err)
		}
		c := newKVCache(m.cfg.Layers)
		pos := 0
		step := func() {
			if _, err := m.forward([]batchEntry{{cache: c, token: 1, pos: pos, wantLogits: true}}); err != nil {
				t.Fatal(err)
			}
			pos++
		}
		step()
		if a := testing.AllocsPerRun(50, step); a != 0 {
			t.Errorf("%s: %v allocations per decode step, want 0", path, a)
		}
		_ = m.Close()
	}
}

// TestMatvecQ8MatchesSingle checks the batch-1 Q8_0 block kernel against
// the single-row dot product bit for bit, and that it writes no further
// than its rows.
func TestMatvecQ8MatchesSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, isa := range supportedISAs() {
		k := newKernels(isa)
		if k.matvecQ8 == nil {
			continue // no batch-1 block kernel without the assembly
		}
		testMatvecQ8(t, rng, isa, k)
	}
}

func testMatvecQ8(t *testing.T, rng *rand.Rand, isa kernelISA, k kernels) {
	for _, cols := range []int{32, 64, 768} {
		for _, rows := range []int{0, 1, 2, 3, 17} {
			vals := make([]float32, (rows+1)*cols)
			for i := range vals {
				vals[i] = float32(rng.NormFloat64())
			}
			w := gguf.QuantizeQ8_0(vals)
			x := make([]float32, cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			var q q8Rows
			q.quantize(x, 1, cols)
			xq, xd, _ := q.row(0)
			xu, _ := q.rowU(0)
			got := make([]float32, rows+1)
			got[rows] = 42
			k.matvecQ8(w, xq, xu, xd, got[:rows])
			rb := cols / 32 * gguf.BlockQ8_0Size
			for r := 0; r < rows; r++ {
				if want := k.dotQ8(w[r*rb:(r+1)*rb], xq, xd); got[r] != want {
					t.Errorf("%v: cols %d rows %d: row %d = %g, single %g", isa, cols, rows, r, got[r], want)
				}
			}
			if got[rows] != 42 {
				t.Errorf("%v: cols %d rows %d: wrote past the output", isa, cols, rows)
			}
		}
	}
}
