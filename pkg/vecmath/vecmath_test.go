package vecmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

func refDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func refL2Sq(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// close reports whether got is within a relative tolerance of want, scaled by
// the magnitude of the summed terms (sumAbs) so cancellation does not make
// the check impossible.
func closeTo(got float32, want, sumAbs float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*sumAbs+1e-6
}

func TestKernelsAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 383, 384, 385, 768, 1000, 1536}
	type kernel struct {
		name string
		f    func(a, b []float32) float32
		ref  func(a, b []float32) float64
		abs  func(a, b []float32) float64
	}
	absDot := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			s += math.Abs(float64(a[i]) * float64(b[i]))
		}
		return s
	}
	kernels := []kernel{
		{"Dot", Dot, refDot, absDot},
		{"dotGeneric", dotGeneric, refDot, absDot},
		{"dotGeneric8", dotGeneric8, refDot, absDot},
		{"L2Sq", L2Sq, refL2Sq, refL2Sq},
		{"l2sqGeneric", l2sqGeneric, refL2Sq, refL2Sq},
	}
	for _, k := range kernels {
		for _, n := range lengths {
			for trial := 0; trial < 3; trial++ {
				a, b := randVec(r, n), randVec(r, n)
				got := k.f(a, b)
				want := k.ref(a, b)
				if !closeTo(got, want, k.abs(a, b)) {
					t.Errorf("%s(len %d) = %v, want %v", k.name, n, got, want)
				}
			}
		}
	}
}

// TestKernelsUnaligned runs the kernels on sub-slices that start at every
// offset of a cache line, so unaligned loads and short tails are exercised.
func TestKernelsUnaligned(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a, b := randVec(r, 600), randVec(r, 600)
	for off := 0; off < 16; off++ {
		for _, n := range []int{5, 37, 384} {
			x, y := a[off:off+n], b[15-off:15-off+n]
			if got, want := Dot(x, y), refDot(x, y); math.Abs(float64(got)-want) > 1e-3 {
				t.Errorf("Dot(off %d, len %d) = %v, want %v", off, n, got, want)
			}
			if got, want := L2Sq(x, y), refL2Sq(x, y); math.Abs(float64(got)-want) > 1e-3*want {
				t.Errorf("L2Sq(off %d, len %d) = %v, want %v", off, n, got, want)
			}
		}
	}
}

func TestNormNormalize(t *testing.T) {
	tests := []struct {
		name   string
		in     []float32
		norm   float32
		wantOK bool
	}{
		{"3-4-5", []float32{3, 4}, 5, true},
		{"unit", []float32{0, 0, 1}, 1, true},
		{"zero", []float32{0, 0, 0}, 0, false},
		{"empty", nil, 0, false},
		{"inf", []float32{float32(math.Inf(1)), 1}, float32(math.Inf(1)), false},
	}
	for _, tt := range tests {
		if got := Norm(tt.in); got != tt.norm {
			t.Errorf("Norm(%s) = %v, want %v", tt.name, got, tt.norm)
		}
		v := append([]float32(nil), tt.in...)
		ok := Normalize(v)
		if ok != tt.wantOK {
			t.Errorf("Normalize(%s) ok = %v, want %v", tt.name, ok, tt.wantOK)
			continue
		}
		if ok {
			if n := Norm(v); math.Abs(float64(n)-1) > 1e-6 {
				t.Errorf("Norm(Normalize(%s)) = %v, want 1", tt.name, n)
			}
		}
	}
}

func TestBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, d := range []int{1, 13, 384} {
		const rows = 37
		q := randVec(r, d)
		m := randVec(r, rows*d)
		dots := make([]float32, rows)
		l2s := make([]float32, rows)
		DotBatch(q, m, dots)
		L2SqBatch(q, m, l2s)
		for i := 0; i < rows; i++ {
			row := m[i*d : (i+1)*d]
			if want := refDot(q, row); math.Abs(float64(dots[i])-want) > 1e-3 {
				t.Errorf("DotBatch(d %d)[%d] = %v, want %v", d, i, dots[i], want)
			}
			if want := refL2Sq(q, row); math.Abs(float64(l2s[i])-want) > 1e-3*want {
				t.Errorf("L2SqBatch(d %d)[%d] = %v, want %v", d, i, l2s[i], want)
			}
		}
	}
}

func TestLengthMismatchPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"Dot", func() { Dot(make([]float32, 3), make([]float32, 4)) }},
		{"L2Sq", func() { L2Sq(make([]float32, 4), make([]float32, 3)) }},
		{"DotBatch", func() { DotBatch(make([]float32, 3), make([]float32, 7), make([]float32, 2)) }},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with mismatched lengths did not panic", tt.name)
				}
			}()
			tt.f()
		}()
	}
}

var sink float32

func benchKernel(b *testing.B, f func(a, c []float32) float32, n int) {
	r := rand.New(rand.NewPCG(7, 8))
	x, y := randVec(r, n), randVec(r, n)
	b.SetBytes(int64(8 * n))
	var s float32
	for b.Loop() {
		s += f(x, y)
	}
	sink = s
}

func BenchmarkDot384(b *testing.B) {
	kernels := []struct {
		name string
		f    func(a, b []float32) float32
	}{
		{"dispatch", Dot},
		{"generic4", dotGeneric},
		{"generic8", dotGeneric8},
		{"naive", func(a, c []float32) float32 {
			var s float32
			for i := range a {
				s += a[i] * c[i]
			}
			return s
		}},
	}
	for _, k := range kernels {
		b.Run(k.name, func(b *testing.B) { benchKernel(b, k.f, 384) })
	}
}

func BenchmarkL2Sq384(b *testing.B) {
	b.Run("dispatch", func(b *testing.B) { benchKernel(b, L2Sq, 384) })
	b.Run("generic8", func(b *testing.B) { benchKernel(b, l2sqGeneric, 384) })
}

func BenchmarkDotBatch(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	const d, rows = 384, 4096
	q := randVec(r, d)
	m := randVec(r, rows*d)
	out := make([]float32, rows)
	b.SetBytes(int64(4 * len(m)))
	for b.Loop() {
		DotBatch(q, m, out)
	}
}
