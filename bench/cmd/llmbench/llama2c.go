package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// exportLlama2c writes a llama-architecture GGUF as llama2.c checkpoints,
// so run.c and runq.c run the very weights the engine runs: fp32Path in
// the legacy (version 0) fp32 layout run.c reads, q80Path in version 2
// (int8 groups of 64 with float32 scales) for runq.c. The layouts follow
// llama2.c's export.py (legacy_export, version2_export). GGUF's llama Q/K
// rows use adjacent-pair RoPE like llama2.c, so no permutation is needed.
func exportLlama2c(src, fp32Path, q80Path string, out io.Writer) error {
	f, err := gguf.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if a, _ := f.String("general.architecture"); a != "llama" {
		return fmt.Errorf("%s: architecture %q, llama2.c runs llama only", src, a)
	}
	u := func(k string) int { v, _ := f.Uint("llama." + k); return int(v) }
	dim, hid, nl, nh := u("embedding_length"), u("feed_forward_length"), u("block_count"), u("attention.head_count")
	nkv := u("attention.head_count_kv")
	if nkv == 0 {
		nkv = nh
	}
	seq := min(u("context_length"), 2048)
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 || int(emb.Dims[0]) != dim {
		return fmt.Errorf("%s: token_embd.weight missing or not %d wide", src, dim)
	}
	vocabN := int(emb.Dims[1])
	if dim == 0 || nh == 0 || dim%nh != 0 || nl == 0 || hid == 0 {
		return fmt.Errorf("%s: bad llama shape dim=%d heads=%d layers=%d hidden=%d", src, dim, nh, nl, hid)
	}
	_, untied := f.Tensor("output.weight")
	// load dequantizes a tensor of exactly n elements to float32.
	load := func(name string, n int) ([]float32, error) {
		t, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("missing tensor %q", name)
		}
		if int(t.Elements()) != n {
			return nil, fmt.Errorf("tensor %q: %d elements, want %d", name, t.Elements(), n)
		}
		v := make([]float32, n)
		if err := gguf.DequantizeRow(t.Type, f.Data(t), v); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		return v, nil
	}
	blk := func(l int, s string) string { return fmt.Sprintf("blk.%d.%s.weight", l, s) }
	kvdim := nkv * (dim / nh)
	mats := []struct {
		name       string
		rows, cols int
	}{{"attn_q", dim, dim}, {"attn_k", kvdim, dim}, {"attn_v", kvdim, dim}, {"attn_output", dim, dim},
		{"ffn_gate", hid, dim}, {"ffn_down", dim, hid}, {"ffn_up", hid, dim}}

	create := func(path string) (*os.File, *bufio.Writer, error) {
		fh, err := os.Create(path)
		if err != nil {
			return nil, nil, err
		}
		return fh, bufio.NewWriterSize(fh, 1<<20), nil
	}
	le := binary.LittleEndian
	put := func(w *bufio.Writer, v any) error { return binary.Write(w, le, v) }
	finish := func(fh *os.File, w *bufio.Writer, path string) error {
		if err := w.Flush(); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (%d bytes)\n", path, st.Size())
		return nil
	}

	// Legacy fp32: 7-int header (negative vocab = untied classifier),
	// then per kind all layers: tokens, attn norms, wq, wk, wv, wo, ffn
	// norms, w1 (gate), w2 (down), w3 (up), final norm, the old RoPE
	// tables (seq*headSize floats, unused), classifier if untied.
	fh, w, err := create(fp32Path)
	if err != nil {
		return err
	}
	v := int32(vocabN)
	if untied {
		v = -v
	}
	write := func(name string, n int) error {
		x, err := load(name, n)
		if err != nil {
			return err
		}
		return put(w, x)
	}
	steps := []func() error{
		func() error {
			return put(w, [7]int32{int32(dim), int32(hid), int32(nl), int32(nh), int32(nkv), v, int32(seq)})
		},
		func() error { return write("token_embd.weight", vocabN*dim) },
	}
	for _, kind := range []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"} {
		for l := 0; l < nl; l++ {
			n := dim
			for _, m := range mats {
				if m.name == kind {
					n = m.rows * m.cols
				}
			}
			steps = append(steps, func() error { return write(blk(l, kind), n) })
		}
	}
	steps = append(steps,
		func() error { return write("output_norm.weight", dim) },
		func() error { return put(w, make([]float32, seq*(dim/nh))) },
	)
	if untied {
		steps = append(steps, func() error { return write("output.weight", vocabN*dim) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			fh.Close()
			return err
		}
	}
	if err := finish(fh, w, fp32Path); err != nil {
		return err
	}

	// Version 2: 256-byte header (magic "ak42", version, config, shared
	// flag, group size), fp32 norms, then each matrix as int8 quants
	// followed by its float32 group scales.
	const gs = 64
	fh, w, err = create(q80Path)
	if err != nil {
		return err
	}
	hdr := make([]byte, 256)
	le.PutUint32(hdr[0:], 0x616b3432)
	le.PutUint32(hdr[4:], 2)
	for i, c := range []int{dim, hid, nl, nh, nkv, vocabN, seq} {
		le.PutUint32(hdr[8+4*i:], uint32(c))
	}
	if !untied {
		hdr[36] = 1
	}
	le.PutUint32(hdr[37:], gs)
	quant := func(name string, n int) error {
		if n%gs != 0 {
			return fmt.Errorf("tensor %q: %d elements, not a multiple of %d", name, n, gs)
		}
		x, err := load(name, n)
		if err != nil {
			return err
		}
		q := make([]byte, n)
		s := make([]float32, n/gs)
		for g := range s {
			grp := x[g*gs : (g+1)*gs]
			var amax float32
			for _, e := range grp {
				amax = max(amax, float32(math.Abs(float64(e))))
			}
			s[g] = amax / 127
			for j, e := range grp {
				if s[g] != 0 {
					q[g*gs+j] = byte(int8(math.Round(float64(e / s[g]))))
				}
			}
		}
		if _, err := w.Write(q); err != nil {
			return err
		}
		return put(w, s)
	}
	steps = []func() error{func() error { _, err := w.Write(hdr); return err }}
	for _, kind := range []string{"attn_norm", "ffn_norm"} {
		for l := 0; l < nl; l++ {
			steps = append(steps, func() error { return write(blk(l, kind), dim) })
		}
	}
	steps = append(steps,
		func() error { return write("output_norm.weight", dim) },
		func() error { return quant("token_embd.weight", vocabN*dim) })
	for _, kind := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"} {
		for _, m := range mats {
			if m.name != kind {
				continue
			}
			for l := 0; l < nl; l++ {
				steps = append(steps, func() error { return quant(blk(l, kind), m.rows*m.cols) })
			}
		}
	}
	if untied {
		steps = append(steps, func() error { return quant("output.weight", vocabN*dim) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			fh.Close()
			return err
		}
	}
	return finish(fh, w, q80Path)
}
