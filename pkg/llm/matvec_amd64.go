//go:build amd64 && !purego

package llm

//go:noescape
func dotF32Rows8Block(w, x *float32, rows, n, stride int, out *float32)

// matvecF32SIMD computes out[r] = w[r·len(x) : (r+1)·len(x)]·x for every r
// in range out, each result bit-identical to dotF32SIMD.
func matvecF32SIMD(w, x, out []float32) {
	rows, cols := len(out), len(x)
	if rows == 0 {
		return
	}
	w = w[:rows*cols]
	m := cols &^ 7
	r8 := rows &^ 7
	if m == 0 {
		r8 = 0
	}
	if r8 > 0 {
		dotF32Rows8Block(&w[0], &x[0], r8, m, cols*4, &out[0])
		for r := 0; r < r8 && m < cols; r++ {
			s := out[r]
			for i := m; i < cols; i++ {
				s += w[r*cols+i] * x[i]
			}
			out[r] = s
		}
	}
	for r := r8; r < rows; r++ {
		out[r] = dotF32SIMD(w[r*cols:(r+1)*cols], x)
	}
}

//go:noescape
func dotQ8_0RowsBlock(w *byte, xq *int8, xd *float32, rows, nb, stride int, out *float32)

// matvecQ8_0SIMD computes out[r] = row r of w (Q8_0, len(xd) blocks per
// row) · the quantized activations xq, xd for every r in range out, each
// result bit-identical to dotQ8_0SIMD.
func matvecQ8_0SIMD(w []byte, xq []int8, xd []float32, out []float32) {
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
