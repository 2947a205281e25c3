package vecmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDotI8MatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 7, 8, 9, 31, 32, 33, 100, 384, 1000} {
		q := make([]float32, n)
		c := make([]int8, n)
		var want float64
		for i := range q {
			q[i] = r.Float32()*2 - 1
			c[i] = int8(r.IntN(255) - 127)
			want += float64(q[i]) * float64(c[i])
		}
		for name, got := range map[string]float32{"DotI8": DotI8(q, c), "generic": dotI8Generic(q, c)} {
			if math.Abs(float64(got)-want) > 1e-3*math.Max(1, math.Abs(want)) {
				t.Errorf("%s(n=%d) = %v, want %v", name, n, got, want)
			}
		}
	}
}

func TestQuantizeI8(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	v := make([]float32, 384)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * 0.05
	}
	Normalize(v)
	c := make([]int8, len(v))
	for _, quantile := range []float32{1, 0.99} {
		scale := QuantizeI8(v, c, quantile)
		// The decoded vector's dot product with the original is within the
		// rounding error of the codes.
		var dot, errSq float64
		for i := range v {
			d := float64(scale) * float64(c[i])
			dot += d * float64(v[i])
			errSq += (d - float64(v[i])) * (d - float64(v[i]))
		}
		if math.Abs(dot-1) > 0.01 || math.Sqrt(errSq) > 0.05 {
			t.Errorf("quantile %v: decoded·original = %v, error norm %v", quantile, dot, math.Sqrt(errSq))
		}
		if got := float64(scale) * float64(DotI8(v, c)); math.Abs(got-dot) > 1e-4 {
			t.Errorf("quantile %v: scale·DotI8 = %v, want %v", quantile, got, dot)
		}
	}
	if s := QuantizeI8(make([]float32, 4), make([]int8, 4), 1); s != 0 {
		t.Errorf("zero vector scale = %v", s)
	}
}

func BenchmarkDotI8(b *testing.B) {
	q := make([]float32, 384)
	c := make([]int8, 384)
	for i := range q {
		q[i], c[i] = float32(i)/384, int8(i%200-100)
	}
	b.SetBytes(384)
	for b.Loop() {
		_ = DotI8(q, c)
	}
}
