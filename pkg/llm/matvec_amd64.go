//go:build amd64 && !purego

package llm

//go:noescape
func dotF32Rows8Block(w, x *float32, rows, n, stride int, out *float32)

// matvecF32SIMD computes out[r] = w[r·len(x) : (r+1)·len(x)]·x for every r
// in range out, each result bit-identical to dotF32SIMD.
func matvecF32SIMD(w, x, out []float32) { dotRowsF32SIMD(w, len(x), x, out) }

// dotRowsF32SIMD computes out[r] = w[r·stride : r·stride+len(x)]·x for
// every r in range out (stride ≥ len(x)), each result bit-identical to
// dotF32SIMD: the batch-1 matvec, and attention's scores over the rows of
// a KV cache.
func dotRowsF32SIMD(w []float32, stride int, x, out []float32) {
	rows, cols := len(out), len(x)
	if rows == 0 {
		return
	}
	w = w[:(rows-1)*stride+cols]
	m := cols &^ 7
	r8 := rows &^ 7
	if m == 0 {
		r8 = 0
	}
	if r8 > 0 {
		dotF32Rows8Block(&w[0], &x[0], r8, m, stride*4, &out[0])
		for r := 0; r < r8 && m < cols; r++ {
			s := out[r]
			for i := m; i < cols; i++ {
				s += w[r*stride+i] * x[i]
			}
			out[r] = s
		}
	}
	for r := r8; r < rows; r++ {
		out[r] = dotF32SIMD(w[r*stride:r*stride+cols], x)
	}
}

//go:noescape
func axpyRowsAVX2(dst, v, a *float32, rows, n, stride int)

// axpyRowsSIMD computes dst += a[t]·v[t·stride : t·stride+len(dst)] for t
// in order, each element's sums bit-identical to one axpySIMD per t:
// attention's weighted sum of V rows, with dst in registers across rows.
func axpyRowsSIMD(dst, v []float32, stride int, a []float32) {
	rows, n := len(a), len(dst)
	if rows == 0 || n == 0 {
		return
	}
	v = v[:(rows-1)*stride+n]
	m := n &^ 7
	if m > 0 {
		axpyRowsAVX2(&dst[0], &v[0], &a[0], rows, m, stride*4)
	}
	if m < n {
		for t, at := range a {
			row := v[t*stride : t*stride+n]
			for i := m; i < n; i++ {
				dst[i] += at * row[i]
			}
		}
	}
}

//go:noescape
func dotQ8_0RowsBlock(w *byte, xq *int8, xd *float32, rows, nb, stride int, out *float32)

// matvecQ8_0SIMD computes out[r] = row r of w (Q8_0, len(xd) blocks per
// row) · the quantized activations xq, xd for every r in range out, each
// result bit-identical to dotQ8_0SIMD.
func matvecQ8_0SIMD(w []byte, xq []int8, _ []uint8, xd []float32, out []float32) {
	rows, nb := len(out), len(xd)
	if rows == 0 {
		return
	}
	if nb == 0 {
		clear(out)
		return
	}
	rb := nb * 34
	_ = w[rows*rb-1]
	_ = xq[nb*32-1]
	dotQ8_0RowsBlock(&w[0], &xq[0], &xd[0], rows, nb, rb, &out[0])
}
