package llm

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// randomBlocks fills n blocks of type t with random bytes and a sane f16
// scale, so every bit pattern of the quants is exercised.
func randomBlocks(rng *rand.Rand, t gguf.TensorType, cols int) []byte {
	b := make([]byte, t.RowSize(cols))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	bs := t.RowSize(t.BlockSize())
	for off := 0; off < len(b); off += bs {
		d := gguf.FloatToHalf(float32(rng.Float64()*0.02 + 0.001))
		switch t {
		case gguf.Q8_0, gguf.Q4_0:
			binary.LittleEndian.PutUint16(b[off:], d)
		case gguf.Q4_K:
			binary.LittleEndian.PutUint16(b[off:], d)
			binary.LittleEndian.PutUint16(b[off+2:], gguf.FloatToHalf(float32(rng.Float64()*0.01)))
		case gguf.Q6_K:
			binary.LittleEndian.PutUint16(b[off+208:], d)
		}
	}
	return b
}

// TestQuantDotMatchesDequantized checks each integer dot product against
// the float dot of the dequantized weight row and the dequantized
// activation quants: the integer arithmetic is exact, so they agree to
// float rounding.
func TestQuantDotMatchesDequantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const cols = 512
	k := newKernels(bestISA()) // assembly only where the CPU runs it
	tests := []struct {
		typ gguf.TensorType
		dot func(w []byte, q *q8Rows) float32
	}{
		{gguf.Q8_0, func(w []byte, q *q8Rows) float32 { xq, xd, _ := q.row(0); return k.dotQ8(w, xq, xd) }},
		{gguf.Q8_0, func(w []byte, q *q8Rows) float32 { xq, xd, _ := q.row(0); return dotQ8_0Go(w, xq, xd) }},
		{gguf.Q4_0, func(w []byte, q *q8Rows) float32 { xq, xd, _ := q.row(0); return dotQ4_0(w, xq, xd) }},
		{gguf.Q4_0, func(w []byte, q *q8Rows) float32 { xq, xd, _ := q.row(0); return k.dotQ4_0(w, xq, xd) }},
		{gguf.Q4_K, func(w []byte, q *q8Rows) float32 { xq, xd, xs := q.row(0); return dotQ4K(w, xq, xd, xs) }},
		{gguf.Q4_K, func(w []byte, q *q8Rows) float32 { xq, xd, xs := q.row(0); return k.dotQ4K(w, xq, xd, xs) }},
		{gguf.Q6_K, func(w []byte, q *q8Rows) float32 { xq, xd, _ := q.row(0); return dotQ6K(w, xq, xd) }},
		{gguf.Q6_K, func(w []byte, q *q8Rows) float32 { xq, xd, _ := q.row(0); return k.dotQ6K(w, xq, xd) }},
	}
	for _, tt := range tests {
		for trial := 0; trial < 20; trial++ {
			w := randomBlocks(rng, tt.typ, cols)
			x := make([]float32, cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			var q q8Rows
			q.quantize(x, 1, cols)
			xq, xd, _ := q.row(0)
			xr := make([]float32, cols)
			for i := range xr {
				xr[i] = float32(xq[i]) * xd[i/32]
			}
			wr := make([]float32, cols)
			if err := gguf.DequantizeRow(tt.typ, w, wr); err != nil {
				t.Fatal(err)
			}
			var want float64
			var mag float64
			for i := range wr {
				want += float64(wr[i]) * float64(xr[i])
				mag += math.Abs(float64(wr[i]) * float64(xr[i]))
			}
			got := float64(tt.dot(w, &q))
			if math.Abs(got-want) > 1e-5*mag+1e-6 {
				t.Errorf("%s dot = %g, want %g (Σ|terms| %g)", tt.typ, got, want, mag)
			}
		}
	}
}

func TestDotF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 8, 15, 16, 31, 32, 33, 64, 100, 768, 1000} {
		a := make([]float32, n)
		b := make([]float32, n)
		var want, mag float64
		for i := range a {
			a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			want += float64(a[i]) * float64(b[i])
			mag += math.Abs(float64(a[i]) * float64(b[i]))
		}
		for name, f := range map[string]func(a, b []float32) float32{"selected": newKernels(bestISA()).dotF32, "dotF32Go": dotF32Go} {
			if got := float64(f(a, b)); math.Abs(got-want) > 1e-5*mag+1e-6 {
				t.Errorf("%s(n=%d) = %g, want %g", name, n, got, want)
			}
		}
	}
}

// TestMatMulBatchedEqualsSingle checks that a batched matmul gives each
// row exactly what a batch of one gives, for every weight type and every
// kernel family the CPU runs (13 rows: an 8-row tile, a 4-row one and one
// left over).
func TestMatMulBatchedEqualsSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, cols, n = 37, 256, 13
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_K, gguf.Q6_K} {
		var data []byte
		for r := 0; r < rows; r++ {
			switch typ {
			case gguf.F32, gguf.F16, gguf.BF16:
				row := make([]byte, typ.RowSize(cols))
				for i := 0; i < cols; i++ {
					v := float32(rng.NormFloat64())
					switch typ {
					case gguf.F32:
						binary.LittleEndian.PutUint32(row[4*i:], math.Float32bits(v))
					case gguf.F16:
						binary.LittleEndian.PutUint16(row[2*i:], gguf.FloatToHalf(v))
					case gguf.BF16:
						binary.LittleEndian.PutUint16(row[2*i:], uint16(math.Float32bits(v)>>16))
					}
				}
				data = append(data, row...)
			default:
				data = append(data, randomBlocks(rng, typ, cols)...)
			}
		}
		w := &Weight{Name: "w", Type: typ, Rows: rows, Cols: cols, Data: data, rowBytes: typ.RowSize(cols)}
		if typ == gguf.F32 {
			w.F32 = bytesToF32(data)
		}
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for _, isa := range supportedISAs() {
			cpu := NewCPU(3)
			cpu.k = newKernels(isa)
			batched := make([]float32, n*rows)
			cpu.MatMul(batched, w, x, n)
			for i := 0; i < n; i++ {
				single := make([]float32, rows)
				cpu.MatMul(single, w, x[i*cols:(i+1)*cols], 1)
				for r := range single {
					if single[r] != batched[i*rows+r] {
						t.Logf("kernels %v", isa)
						t.Fatalf("%s: row %d of batch item %d: batched %g, single %g", typ, r, i, batched[i*rows+r], single[r])
					}
				}
				// And against the dequantized float product: quantizing x to
				// 8 bits moves each element by at most half a step (amax/254
				// of its block), which bounds the difference.
				deq := make([]float32, cols)
				xi := x[i*cols : (i+1)*cols]
				for r := 0; r < rows; r++ {
					w.DequantizeRow(r, deq)
					want := dotF32Go(deq, xi)
					var bound float64
					for b := 0; b < cols; b += 32 {
						var amax, wsum float64
						for j := b; j < b+32; j++ {
							amax = math.Max(amax, math.Abs(float64(xi[j])))
							wsum += math.Abs(float64(deq[j]))
						}
						bound += wsum * amax / 254
					}
					if typ == gguf.F32 || typ == gguf.F16 || typ == gguf.BF16 {
						bound = 0
					}
					if d := math.Abs(float64(single[r] - want)); d > bound*1.001+1e-4*math.Max(1, math.Abs(float64(want))) {
						t.Errorf("%s (kernels %v): row %d: %g, dequantized product %g (bound %g)", typ, isa, r, single[r], want, bound)
					}
				}
			}
		}
	}
}

func TestDotF16SIMD(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 8, 9, 16, 24, 100, 256} {
		w := make([]byte, 2*n)
		x := make([]float32, n)
		for i := range x {
			binary.LittleEndian.PutUint16(w[2*i:], gguf.FloatToHalf(float32(rng.NormFloat64())))
			x[i] = float32(rng.NormFloat64())
		}
		want, got := dotF16(w, x), newKernels(bestISA()).dotF16(w, x)
		if math.Abs(float64(got-want)) > 1e-4*math.Max(1, math.Abs(float64(want))) {
			t.Errorf("dotF16SIMD(n=%d) = %g, want %g", n, got, want)
		}
	}
}

func TestAxpySIMD(t *testing.T) {
	for _, n := range []int{0, 3, 8, 13, 64} {
		a := make([]float32, n)
		b := make([]float32, n)
		x := make([]float32, n)
		for i := range x {
			a[i], b[i], x[i] = float32(i), float32(i), float32(2*i+1)
		}
		axpy(a, x, 0.5)
		newKernels(bestISA()).axpy(b, x, 0.5)
		for i := range a {
			if a[i] != b[i] {
				t.Errorf("axpySIMD(n=%d)[%d] = %g, want %g", n, i, b[i], a[i])
			}
		}
	}
}

// TestQ8TilesMatchSingle checks both Q8_0 tiles against the single-row
// kernel bit for bit (the VNNI one only where the CPU has it).
func TestQ8TilesMatchSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const cols = 768
	tiles := map[string]func(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32){"portable": func(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32) {
		for j := 0; j < 4; j++ {
			out[j] = dotQ8_0Go(w, xq[j], xd[j])
		}
	}}
	single := dotQ8_0Go
	if simdKernels() {
		tiles = map[string]func(w []byte, xq *[4][]int8, xd *[4][]float32, out *[4]float32){"avx2": tileQ8_0SIMD}
		single = dotQ8_0SIMD
	}
	if vnniKernels() {
		tiles["vnni"] = tileQ8_0VNNI
	}
	for trial := 0; trial < 10; trial++ {
		w := randomBlocks(rng, gguf.Q8_0, cols)
		x := make([]float32, 4*cols)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		var q q8Rows
		q.quantize(x, 4, cols)
		var xq [4][]int8
		var xd [4][]float32
		for j := 0; j < 4; j++ {
			xq[j], xd[j], _ = q.row(j)
		}
		for name, tile := range tiles {
			var out [4]float32
			tile(w, &xq, &xd, &out)
			for j := 0; j < 4; j++ {
				if want := single(w, xq[j], xd[j]); out[j] != want {
					t.Errorf("%s tile[%d] = %g, single %g", name, j, out[j], want)
				}
			}
		}
		if vnniKernels() {
			w1 := randomBlocks(rng, gguf.Q8_0, cols)
			var xu [4][]uint8
			for j := 0; j < 4; j++ {
				xu[j], _ = q.rowU(j)
			}
			tiles2 := map[string]func(w0, w1 []byte, xu *[4][]uint8, xd *[4][]float32, out *[8]float32){"vnni": tileQ8_0x2VNNI}
			if avx512Kernels() {
				tiles2["avx512"] = newKernels(isaAVX512).tileQ8x2
			}
			for name, tile := range tiles2 {
				var out [8]float32
				tile(w, w1, &xu, &xd, &out)
				for j := 0; j < 4; j++ {
					if want := single(w, xq[j], xd[j]); out[j] != want {
						t.Errorf("%s 2x4 tile row 0 [%d] = %g, single %g", name, j, out[j], want)
					}
					if want := single(w1, xq[j], xd[j]); out[4+j] != want {
						t.Errorf("%s 2x4 tile row 1 [%d] = %g, single %g", name, j, out[4+j], want)
					}
				}
			}
		}
	}
}

// TestMatvecMatchesSingle checks the batch-1 F32 block kernel against the
// single-row dot product bit for bit: row counts around its groups of 8,
// widths with and without a tail of 8 and of fewer than 8.
func TestMatvecMatchesSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	k := newKernels(bestISA())
	if k.matvecF32 == nil {
		t.Skip("no batch-1 block kernel without the assembly")
	}
	for _, cols := range []int{0, 5, 8, 16, 24, 100, 768} {
		for _, rows := range []int{0, 1, 7, 8, 9, 16, 23, 64} {
			w := make([]float32, rows*cols+cols) // one spare row: the kernel must not read it
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			x := make([]float32, cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			got := make([]float32, rows+1)
			got[rows] = 42
			k.matvecF32(w, x, got[:rows])
			for r := 0; r < rows; r++ {
				if want := k.dotF32(w[r*cols:(r+1)*cols], x); got[r] != want {
					t.Errorf("cols %d rows %d: row %d = %g, single %g", cols, rows, r, got[r], want)
				}
			}
			if got[rows] != 42 {
				t.Errorf("cols %d rows %d: wrote past the output", cols, rows)
			}
		}
	}
}

// TestMatMulManyEqualsMatMul checks that fused products (one region, one
// quantization of x) equal separate MatMul calls, at batch 1 and 5.
func TestMatMulManyEqualsMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const cols = 128
	cpu := NewCPU(2)
	defer cpu.Close()
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		var ops []MatMulOp
		for _, rows := range []int{64, 7, 300} {
			var data []byte
			if typ == gguf.F32 {
				v := make([]float32, rows*cols)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				data = gguf.EncodeF32(v)
			} else {
				for r := 0; r < rows; r++ {
					data = append(data, randomBlocks(rng, typ, cols)...)
				}
			}
			w, err := NewWeight("w", typ, rows, cols, data)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, MatMulOp{W: w})
		}
		for _, n := range []int{1, 5} {
			x := make([]float32, n*cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			for i := range ops {
				ops[i].Out = make([]float32, n*ops[i].W.Rows)
			}
			cpu.MatMulMany(ops, x, n)
			for _, op := range ops {
				want := make([]float32, n*op.W.Rows)
				cpu.MatMul(want, op.W, x, n)
				for i := range want {
					if op.Out[i] != want[i] {
						t.Fatalf("%s n=%d rows=%d: element %d fused %g, alone %g", typ, n, op.W.Rows, i, op.Out[i], want[i])
					}
				}
			}
		}
	}
}

// TestTileF32x8MatchesSingle checks the 4×8 F32 tile against the AVX2
// single-row dot product bit for bit, with and without a column tail.
func TestTileF32x8MatchesSingle(t *testing.T) {
	if !avx512Kernels() {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(17, 18))
	for _, cols := range []int{0, 3, 8, 16, 24, 29, 256, 768} {
		w := make([]float32, 4*cols)
		x := make([]float32, 8*cols)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		var out [32]float32
		newKernels(isaAVX512).tileF32x8(w, x, cols, &out)
		for r := 0; r < 4; r++ {
			for j := 0; j < 8; j++ {
				if want := dotF32SIMD(w[r*cols:(r+1)*cols], x[j*cols:(j+1)*cols]); out[8*r+j] != want {
					t.Errorf("cols %d: tile[%d][%d] = %g, single %g", cols, r, j, out[8*r+j], want)
				}
			}
		}
	}
}

// TestAttentionRowKernels checks, for every kernel family, the strided
// dot and axpy kernels of attention against one dot product or axpy per
// row, bit for bit, across row counts around the groups of 8 and widths
// with and without tails.
func TestAttentionRowKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, isa := range supportedISAs() {
		k := newKernels(isa)
		for _, d := range []int{0, 5, 8, 40, 64, 100} {
			for _, rows := range []int{0, 1, 7, 8, 9, 33} {
				stride := 3*d + 4
				v := make([]float32, rows*stride)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				x := make([]float32, d)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				got := make([]float32, rows+1)
				got[rows] = 42
				k.dotRows(v, stride, x, got[:rows])
				for r := 0; r < rows; r++ {
					if want := k.dotF32(x, v[r*stride:r*stride+d]); got[r] != want {
						t.Errorf("%v dotRows d %d rows %d: row %d = %g, single %g", isa, d, rows, r, got[r], want)
					}
				}
				if got[rows] != 42 {
					t.Errorf("%v dotRows d %d rows %d: wrote past the output", isa, d, rows)
				}
				a := got[:rows]
				dst, want := make([]float32, d), make([]float32, d)
				for i := range dst {
					dst[i] = float32(rng.NormFloat64())
					want[i] = dst[i]
				}
				k.axpyRows(dst, v, stride, a)
				for r := range a {
					k.axpy(want, v[r*stride:r*stride+d], a[r])
				}
				for i := range dst {
					if dst[i] != want[i] {
						t.Errorf("%v axpyRows d %d rows %d: [%d] = %g, one axpy per row %g", isa, d, rows, i, dst[i], want[i])
					}
				}
			}
		}
	}
}

// TestQuantizeQ8 checks every kernel family's activation quantization
// against quantizeQ8Go bit for bit: random blocks, a zero block, and a
// block of exact halves (scale 1), where rounding half away from zero
// differs from rounding half to even.
func TestQuantizeQ8(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const nb = 40
	x := make([]float32, nb*32)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * float32(1+i/32)
	}
	clear(x[32:64])
	halves := x[64:96]
	halves[0] = 127
	for i := 1; i < 32; i++ {
		halves[i] = float32(i-16) + 0.5
	}
	x[96] = 1e-30
	want := q8Rows{qs: make([]int8, nb*32), qu: make([]uint8, nb*32), d: make([]float32, nb), sum: make([]int32, nb)}
	quantizeQ8Go(x, want.qs, want.qu, want.d, want.sum)
	for _, isa := range supportedISAs() {
		got := q8Rows{qs: make([]int8, nb*32), qu: make([]uint8, nb*32), d: make([]float32, nb), sum: make([]int32, nb)}
		newKernels(isa).quantQ8(x, got.qs, got.qu, got.d, got.sum)
		for b := 0; b < nb; b++ {
			if got.d[b] != want.d[b] || got.sum[b] != want.sum[b] {
				t.Errorf("%v block %d: d %g sum %d, want %g %d", isa, b, got.d[b], got.sum[b], want.d[b], want.sum[b])
			}
			for j := b * 32; j < b*32+32; j++ {
				if got.qs[j] != want.qs[j] || got.qu[j] != want.qu[j] {
					t.Errorf("%v [%d]: %d/%d, want %d/%d", isa, j, got.qs[j], got.qu[j], want.qs[j], want.qu[j])
				}
			}
		}
	}
}
