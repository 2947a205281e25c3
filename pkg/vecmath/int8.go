package vecmath

import (
	"math"
	"slices"
)

// DotI8 returns the dot product of a float32 query q with int8 codes c (the
// codes as integers; multiply by the vector's scale for the dot product
// with the decoded vector). It panics if the lengths differ.
func DotI8(q []float32, c []int8) float32 {
	if len(q) != len(c) {
		panic("vecmath: DotI8 of vectors with different lengths")
	}
	return dotI8(q, c)
}

// QuantizeI8 writes into c the symmetric int8 codes of v, c[i] =
// round(v[i] / scale) clamped to ±127, and returns scale. The scale maps
// the quantile-th largest |v[i]| to 127 (quantile in (0, 1]; 1 maps the
// largest), so that a few outliers do not cost every other component its
// precision; larger components saturate. A zero vector gets scale 0.
// It panics if the lengths differ.
func QuantizeI8(v []float32, c []int8, quantile float32) float32 {
	if len(v) != len(c) {
		panic("vecmath: QuantizeI8 of vectors with different lengths")
	}
	var top float32
	if quantile >= 1 || len(v) < 2 {
		for _, x := range v {
			top = max(top, float32(math.Abs(float64(x))))
		}
	} else {
		abs := make([]float32, len(v))
		for i, x := range v {
			abs[i] = float32(math.Abs(float64(x)))
		}
		slices.Sort(abs)
		top = abs[min(len(abs)-1, int(quantile*float32(len(abs))))]
	}
	if top == 0 || math.IsNaN(float64(top)) || math.IsInf(float64(top), 0) {
		clear(c)
		return 0
	}
	scale := top / 127
	inv := 1 / scale
	for i, x := range v {
		r := math.Round(float64(x * inv))
		c[i] = int8(max(-127, min(127, r)))
	}
	return scale
}

// dotI8Generic is the portable DotI8.
func dotI8Generic(q []float32, c []int8) float32 {
	c = c[:len(q)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(q); i += 4 {
		qq := q[i : i+4 : i+4]
		cc := c[i : i+4 : i+4]
		s0 += qq[0] * float32(cc[0])
		s1 += qq[1] * float32(cc[1])
		s2 += qq[2] * float32(cc[2])
		s3 += qq[3] * float32(cc[3])
	}
	for ; i < len(q); i++ {
		s0 += q[i] * float32(c[i])
	}
	return (s0 + s1) + (s2 + s3)
}
