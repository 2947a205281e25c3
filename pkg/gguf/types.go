package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// TensorType is ggml's tensor element type.
type TensorType uint32

// Tensor types this package can read (numbering as in ggml.h). Others are
// rejected with ErrFormat.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q8_0 TensorType = 8
	Q4_K TensorType = 12
	Q6_K TensorType = 14
	BF16 TensorType = 30
)

// Block sizes and byte sizes of ggml's quantized blocks.
const (
	QK8_0 = 32 // elements per Q8_0 / Q4_0 block
	QKK   = 256

	BlockQ8_0Size = 2 + QK8_0         // f16 d; int8 qs[32]
	BlockQ4_0Size = 2 + QK8_0/2       // f16 d; uint8 qs[16]
	BlockQ4_KSize = 2 + 2 + 12 + 128  // f16 d, dmin; scales[12]; qs[128]
	BlockQ6_KSize = 128 + 64 + 16 + 2 // ql[128]; qh[64]; int8 scales[16]; f16 d
)

func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case Q4_0:
		return "Q4_0"
	case Q8_0:
		return "Q8_0"
	case Q4_K:
		return "Q4_K"
	case Q6_K:
		return "Q6_K"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// blockLayout returns elements per block and bytes per block.
func (t TensorType) blockLayout() (elems, bytes int, ok bool) {
	switch t {
	case F32:
		return 1, 4, true
	case F16, BF16:
		return 1, 2, true
	case Q4_0:
		return QK8_0, BlockQ4_0Size, true
	case Q8_0:
		return QK8_0, BlockQ8_0Size, true
	case Q4_K:
		return QKK, BlockQ4_KSize, true
	case Q6_K:
		return QKK, BlockQ6_KSize, true
	}
	return 0, 0, false
}

// BlockSize is the number of elements per block (1 for float types).
func (t TensorType) BlockSize() int { e, _, _ := t.blockLayout(); return e }

// RowSize is the encoded size in bytes of a row of n elements; n must be a
// multiple of BlockSize.
func (t TensorType) RowSize(n int) int {
	e, b, ok := t.blockLayout()
	if !ok {
		return 0
	}
	return n / e * b
}

// Supported reports whether this package can decode t.
func (t TensorType) Supported() bool { _, _, ok := t.blockLayout(); return ok }

// HalfToFloat converts an IEEE 754 half-precision value to float32.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// FloatToHalf converts float32 to half precision, rounding to nearest even.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0:
		return sign
	case b>>23&0xff == 0xff:
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 0x1f:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// BF16ToFloat converts a bfloat16 value to float32.
func BF16ToFloat(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// DequantizeRow decodes the n elements encoded in src (type t) into dst.
// src must hold exactly RowSize(n) bytes and n must be a multiple of the
// block size.
func DequantizeRow(t TensorType, src []byte, dst []float32) error {
	n := len(dst)
	e, _, ok := t.blockLayout()
	if !ok {
		return fmt.Errorf("%w: cannot decode %s", ErrFormat, t)
	}
	if n%e != 0 || len(src) != t.RowSize(n) {
		return fmt.Errorf("%w: %s row of %d elements needs %d bytes, have %d", ErrFormat, t, n, t.RowSize(n), len(src))
	}
	le := binary.LittleEndian
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = HalfToFloat(le.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat(le.Uint16(src[2*i:]))
		}
	case Q8_0:
		for b := 0; b < n/QK8_0; b++ {
			blk := src[b*BlockQ8_0Size:]
			d := HalfToFloat(le.Uint16(blk))
			y := dst[b*QK8_0 : b*QK8_0+QK8_0]
			for j := range y {
				y[j] = d * float32(int8(blk[2+j]))
			}
		}
	case Q4_0:
		for b := 0; b < n/QK8_0; b++ {
			blk := src[b*BlockQ4_0Size:]
			d := HalfToFloat(le.Uint16(blk))
			y := dst[b*QK8_0 : b*QK8_0+QK8_0]
			for j := 0; j < 16; j++ {
				q := blk[2+j]
				y[j] = d * float32(int(q&0xf)-8)
				y[j+16] = d * float32(int(q>>4)-8)
			}
		}
	case Q4_K:
		for b := 0; b < n/QKK; b++ {
			DequantizeQ4K(src[b*BlockQ4_KSize:(b+1)*BlockQ4_KSize], dst[b*QKK:(b+1)*QKK])
		}
	case Q6_K:
		for b := 0; b < n/QKK; b++ {
			DequantizeQ6K(src[b*BlockQ6_KSize:(b+1)*BlockQ6_KSize], dst[b*QKK:(b+1)*QKK])
		}
	}
	return nil
}

// ScaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7) from a
// Q4_K block's 12 scale bytes, as ggml's get_scale_min_k4.
func ScaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xf) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

// DequantizeQ4K decodes one 144-byte Q4_K block into 256 floats.
func DequantizeQ4K(blk []byte, y []float32) {
	_ = blk[BlockQ4_KSize-1]
	_ = y[QKK-1]
	d := HalfToFloat(binary.LittleEndian.Uint16(blk))
	dmin := HalfToFloat(binary.LittleEndian.Uint16(blk[2:]))
	scales := blk[4:16]
	q := blk[16:]
	is := 0
	for j := 0; j < QKK; j += 64 {
		sc, m := ScaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = ScaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := 0; l < 32; l++ {
			y[j+l] = d1*float32(q[l]&0xf) - m1
			y[j+32+l] = d2*float32(q[l]>>4) - m2
		}
		q = q[32:]
		is += 2
	}
}

// DequantizeQ6K decodes one 210-byte Q6_K block into 256 floats.
func DequantizeQ6K(blk []byte, y []float32) {
	_ = blk[BlockQ6_KSize-1]
	_ = y[QKK-1]
	ql := blk[0:128]
	qh := blk[128:192]
	sc := blk[192:208]
	d := HalfToFloat(binary.LittleEndian.Uint16(blk[208:]))
	for n := 0; n < QKK; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int8((ql[l]&0xf)|((qh[l]>>0)&3)<<4) - 32
			q2 := int8((ql[l+32]&0xf)|((qh[l]>>2)&3)<<4) - 32
			q3 := int8((ql[l]>>4)|((qh[l]>>4)&3)<<4) - 32
			q4 := int8((ql[l+32]>>4)|((qh[l]>>6)&3)<<4) - 32
			y[n+l] = d * float32(int8(sc[is])) * float32(q1)
			y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}
