package encoder

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSoftmaxGELU checks the vector softmax and GELU against the scalar
// forms at lengths around the 8-float blocks and at extreme values.
func TestSoftmaxGELU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 8, 9, 16, 31, 256, 300} {
		x := make([]float32, n)
		for i := range x {
			x[i] = 40 * (2*r.Float32() - 1)
		}
		x[r.IntN(n)] = -1e4 // e^ underflows to (about) 0
		got, want := append([]float32(nil), x...), append([]float32(nil), x...)
		softmax(got, 0.5)
		softmaxGo(want, 0.5)
		var sum float64
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-6+1e-5*float64(want[i]) {
				t.Fatalf("softmax n=%d [%d] = %g, want %g", n, i, got[i], want[i])
			}
			sum += float64(got[i])
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Fatalf("softmax n=%d sums to %g", n, sum)
		}
		x[0], x[n-1] = 12, -12 // erf clamped at ±4/√2·…
		got, want = append([]float32(nil), x...), append([]float32(nil), x...)
		gelu(got)
		geluGo(want)
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-6*max(1, math.Abs(float64(want[i]))) {
				t.Fatalf("gelu n=%d [%d] = %g, want %g", n, i, got[i], want[i])
			}
		}
	}
}
