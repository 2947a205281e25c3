package llm

import (
	"encoding/binary"
	"math"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// q8Rows holds activations quantized to 8-bit blocks of 32, the way ggml
// quantizes the right-hand side of a quantized matmul once per step: row i
// has cols/32 blocks, each with a float scale and the sum of its quants.
type q8Rows struct {
	cols int
	qs   []int8
	qu   []uint8 // qs+128, for kernels that multiply unsigned by signed bytes
	d    []float32
	sum  []int32
}

func (q *q8Rows) quantize(x []float32, n, cols int) {
	q.resize(n, cols)
	q.quantizeBlocks(x, 0, n*cols/32)
}

// resize makes room for n rows of cols; quantizeBlocks then fills blocks
// [lo, hi) of x, so threads can share the work.
func (q *q8Rows) resize(n, cols int) {
	nb := cols / 32
	q.cols = cols
	q.qs = grow(q.qs, n*cols)
	q.qu = grow(q.qu, n*cols)
	q.d = grow(q.d, n*nb)
	q.sum = grow(q.sum, n*nb)
}

func (q *q8Rows) quantizeBlocks(x []float32, lo, hi int) {
	quantizeQ8Go(x[lo*32:hi*32], q.qs[lo*32:hi*32], q.qu[lo*32:hi*32], q.d[lo:hi], q.sum[lo:hi])
}

// quantizeQ8Go quantizes the len(d) blocks of 32 in x: scale d = amax/127,
// quants round(x/d) half away from zero, also offset by 128 (qu), and
// their sums.
func quantizeQ8Go(x []float32, qs []int8, qu []uint8, d []float32, sum []int32) {
	for b := range d {
		blk := x[b*32 : b*32+32]
		var amax float32
		for _, v := range blk {
			if v < 0 {
				v = -v
			}
			amax = max(amax, v)
		}
		db := amax / 127
		id := float32(0)
		if db != 0 {
			id = 1 / db
		}
		qsb := qs[b*32 : b*32+32]
		qub := qu[b*32 : b*32+32]
		var s int32
		for j, v := range blk {
			r := int8(math.Round(float64(v * id)))
			qsb[j] = r
			qub[j] = uint8(r) ^ 0x80
			s += int32(r)
		}
		d[b] = db
		sum[b] = s
	}
}

// rowU returns row i's quants offset by 128 (unsigned) and its scales.
func (q *q8Rows) rowU(i int) ([]uint8, []float32) {
	nb := q.cols / 32
	return q.qu[i*q.cols : (i+1)*q.cols], q.d[i*nb : (i+1)*nb]
}

// row returns the quants, scales and sums of row i.
func (q *q8Rows) row(i int) ([]int8, []float32, []int32) {
	nb := q.cols / 32
	return q.qs[i*q.cols : (i+1)*q.cols], q.d[i*nb : (i+1)*nb], q.sum[i*nb : (i+1)*nb]
}

func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// dotF32Go is the portable float32 dot product.
func dotF32Go(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16(w []byte, x []float32) float32 {
	var s float32
	for i := range x {
		s += gguf.HalfToFloat(binary.LittleEndian.Uint16(w[2*i:])) * x[i]
	}
	return s
}

func dotBF16(w []byte, x []float32) float32 {
	var s float32
	for i := range x {
		s += gguf.BF16ToFloat(binary.LittleEndian.Uint16(w[2*i:])) * x[i]
	}
	return s
}

// dotI8x32Go is the integer dot product of one 32-element block.
func dotI8x32Go(a []byte, b []int8) int32 {
	a = a[:32]
	b = b[:32]
	var s0, s1 int32
	for i := 0; i < 32; i += 2 {
		s0 += int32(int8(a[i])) * int32(b[i])
		s1 += int32(int8(a[i+1])) * int32(b[i+1])
	}
	return s0 + s1
}

// dotQ8_0Go multiplies a row of Q8_0 blocks with quantized activations.
func dotQ8_0Go(w []byte, xq []int8, xd []float32) float32 {
	var s float32
	for b := range xd {
		blk := w[b*gguf.BlockQ8_0Size : (b+1)*gguf.BlockQ8_0Size]
		d := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk))
		s += d * xd[b] * float32(dotI8x32Go(blk[2:], xq[b*32:]))
	}
	return s
}

func dotQ4_0(w []byte, xq []int8, xd []float32) float32 {
	var s float32
	for b := range xd {
		blk := w[b*gguf.BlockQ4_0Size : (b+1)*gguf.BlockQ4_0Size]
		d := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk))
		q := xq[b*32 : b*32+32]
		var acc int32
		for j := 0; j < 16; j++ {
			v := blk[2+j]
			acc += (int32(v&0xf) - 8) * int32(q[j])
			acc += (int32(v>>4) - 8) * int32(q[j+16])
		}
		s += d * xd[b] * float32(acc)
	}
	return s
}

func dotQ4K(w []byte, xq []int8, xd []float32, xs []int32) float32 {
	var s float32
	nb := len(xd) / 8
	for b := 0; b < nb; b++ {
		blk := w[b*gguf.BlockQ4_KSize : (b+1)*gguf.BlockQ4_KSize]
		d := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk))
		dmin := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk[2:]))
		scales := blk[4:16]
		qs := blk[16:]
		for k := 0; k < 4; k++ {
			q := qs[32*k : 32*k+32]
			sb := b*8 + 2*k
			xa := xq[sb*32 : sb*32+32]
			xb := xq[sb*32+32 : sb*32+64]
			var lo, hi int32
			for l := 0; l < 32; l++ {
				lo += int32(q[l]&0xf) * int32(xa[l])
				hi += int32(q[l]>>4) * int32(xb[l])
			}
			sc1, m1 := gguf.ScaleMinK4(2*k, scales)
			sc2, m2 := gguf.ScaleMinK4(2*k+1, scales)
			s += xd[sb] * (d*float32(sc1)*float32(lo) - dmin*float32(m1)*float32(xs[sb]))
			s += xd[sb+1] * (d*float32(sc2)*float32(hi) - dmin*float32(m2)*float32(xs[sb+1]))
		}
	}
	return s
}

func dotQ6K(w []byte, xq []int8, xd []float32) float32 {
	var s float32
	nb := len(xd) / 8
	for b := 0; b < nb; b++ {
		blk := w[b*gguf.BlockQ6_KSize : (b+1)*gguf.BlockQ6_KSize]
		d := gguf.HalfToFloat(binary.LittleEndian.Uint16(blk[208:]))
		for half := 0; half < 2; half++ {
			ql := blk[64*half : 64*half+64]
			qh := blk[128+32*half : 128+32*half+32]
			sc := blk[192+8*half : 192+8*half+8]
			for g := 0; g < 4; g++ {
				ab := b*8 + 4*half + g
				x := xq[ab*32 : ab*32+32]
				var acc [2]int32
				for l := 0; l < 32; l++ {
					var q int32
					switch g {
					case 0:
						q = int32(ql[l]&0xf | (qh[l]&3)<<4)
					case 1:
						q = int32(ql[l+32]&0xf | (qh[l]>>2&3)<<4)
					case 2:
						q = int32(ql[l]>>4 | (qh[l]>>4&3)<<4)
					case 3:
						q = int32(ql[l+32]>>4 | (qh[l]>>6&3)<<4)
					}
					acc[l/16] += (q - 32) * int32(x[l])
				}
				s += d * xd[ab] * (float32(int8(sc[2*g]))*float32(acc[0]) + float32(int8(sc[2*g+1]))*float32(acc[1]))
			}
		}
	}
	return s
}
