// Package vecmath provides fast float32 vector kernels: dot product, squared
// Euclidean distance, norm, normalisation and a batch dot product of one query
// against a row-major matrix.
//
// On amd64 CPUs with AVX2 and FMA the kernels run in assembly; everywhere else
// (other architectures, the purego build tag, older CPUs) they run in plain Go
// with several independent accumulators, which the Go compiler turns into
// pipelined scalar code. Results of the two paths differ only by float32
// rounding order.
//
// All functions are safe for concurrent use and do not allocate.
package vecmath

import "math"

// Dot returns the dot product of a and b. It panics if the lengths differ,
// like an out-of-range slice index would.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("vecmath: Dot of vectors with different lengths")
	}
	return dot(a, b)
}

// L2Sq returns the squared Euclidean distance between a and b. It panics if
// the lengths differ.
func L2Sq(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("vecmath: L2Sq of vectors with different lengths")
	}
	return l2sq(a, b)
}

// Norm returns the Euclidean norm of a.
func Norm(a []float32) float32 {
	return float32(math.Sqrt(float64(dot(a, a))))
}

// Normalize scales a in place to unit Euclidean norm and reports whether it
// could: a zero vector (or one with a non-finite norm) is left unchanged and
// Normalize returns false.
func Normalize(a []float32) bool {
	n := Norm(a)
	if n == 0 || math.IsInf(float64(n), 0) || math.IsNaN(float64(n)) {
		return false
	}
	inv := 1 / n
	for i := range a {
		a[i] *= inv
	}
	return true
}

// DotBatch writes into out[i] the dot product of q with row i of the row-major
// matrix m, whose rows have len(q) elements. It panics if len(m) is not
// len(out)*len(q).
func DotBatch(q, m, out []float32) {
	d := len(q)
	if len(m) != len(out)*d {
		panic("vecmath: DotBatch matrix size does not match query and output")
	}
	for i := range out {
		out[i] = dot(q, m[i*d:(i+1)*d:(i+1)*d])
	}
}

// L2SqBatch writes into out[i] the squared Euclidean distance between q and
// row i of the row-major matrix m. It panics if len(m) is not len(out)*len(q).
func L2SqBatch(q, m, out []float32) {
	d := len(q)
	if len(m) != len(out)*d {
		panic("vecmath: L2SqBatch matrix size does not match query and output")
	}
	for i := range out {
		out[i] = l2sq(q, m[i*d:(i+1)*d:(i+1)*d])
	}
}

// HasAsm reports whether the assembly kernels are in use on this machine.
func HasAsm() bool { return useAsm }

// dotGeneric8 is an eight-accumulator variant kept for the benchmark
// comparison; on the machines we measured it was slower than four.
func dotGeneric8(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// dotGeneric is the portable dot product with four independent accumulators,
// the fastest plain-Go variant we measured.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		aa := a[i : i+4 : i+4]
		bb := b[i : i+4 : i+4]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// l2sqGeneric is the portable squared Euclidean distance.
func l2sqGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		d0 := aa[0] - bb[0]
		d1 := aa[1] - bb[1]
		d2 := aa[2] - bb[2]
		d3 := aa[3] - bb[3]
		d4 := aa[4] - bb[4]
		d5 := aa[5] - bb[5]
		d6 := aa[6] - bb[6]
		d7 := aa[7] - bb[7]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
		s4 += d4 * d4
		s5 += d5 * d5
		s6 += d6 * d6
		s7 += d7 * d7
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
