//go:build amd64 && !purego

package encoder

import "golang.org/x/sys/cpu"

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func scaleAVX2(x *float32, n int, s float32)

//go:noescape
func expSumAVX2(x *float32, n int, m, scale float32) float32

//go:noescape
func geluAVX2(x *float32, n int)

var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// softmax sets row to softmax(row·scale): the eight-float assembly for
// the bulk, exp32 for the rest.
func softmax(row []float32, scale float32) {
	n := len(row) &^ 7
	if !haveAVX2 || n == 0 {
		softmaxGo(row, scale)
		return
	}
	m := maxAVX2(&row[0], n)
	for _, a := range row[n:] {
		m = max(m, a)
	}
	sum := expSumAVX2(&row[0], n, m, scale)
	for s, a := range row[n:] {
		row[n+s] = exp32((a - m) * scale)
		sum += row[n+s]
	}
	inv := 1 / sum
	scaleAVX2(&row[0], n, inv)
	for s := range row[n:] {
		row[n+s] *= inv
	}
}

// gelu applies the exact GELU in place.
func gelu(x []float32) {
	n := len(x) &^ 7
	if haveAVX2 && n > 0 {
		geluAVX2(&x[0], n)
	}
	geluGo(x[n:])
}
