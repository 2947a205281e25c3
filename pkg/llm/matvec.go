package llm

import "github.com/tributary-rag/tributary/pkg/gguf"

// matvecQuant computes rows [lo, hi) of out = w·x for a quantized weight
// and one input row, quantized in c.q8 (a decode step). It declares none of
// the batched path's tile scratch, which escapes to the heap: a decode step
// allocates nothing.
func (c *CPU) matvecQuant(out []float32, w *Weight, lo, hi int) {
	xq, xd, xs := c.q8.row(0)
	var dot func(w []byte, xq []int8, xd []float32) float32
	switch w.Type {
	case gguf.Q8_0:
		if mv := c.k.matvecQ8; mv != nil {
			xu, _ := c.q8.rowU(0)
			mv(w.Data[lo*w.rowBytes:hi*w.rowBytes], xq, xu, xd, out[lo:hi])
			return
		}
		dot = c.k.dotQ8
	case gguf.Q4_0:
		dot = c.k.dotQ4_0
	case gguf.Q6_K:
		dot = c.k.dotQ6K
	case gguf.Q4_K:
		for r := lo; r < hi; r++ {
			out[r] = c.k.dotQ4K(w.Row(r), xq, xd, xs)
		}
		return
	default:
		clear(out[lo:hi]) // the batched path's result for a type no kernel reads
		return
	}
	for r := lo; r < hi; r++ {
		out[r] = dot(w.Row(r), xq, xd)
	}
}
