//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 kernels. Each keeps the 8-lane accumulators of its AVX2
// counterpart, lane for lane and in the same order, and packs two of them
// into one zmm register (two weight rows, or two activation rows): a zmm
// FMA then does the work of two ymm ones and every result stays
// bit-identical to the AVX2 kernels, so batched and single products, and
// machines with and without AVX-512, agree.

// F32T8STEP(off): one 8-column step of the 4×8 tile. Z0 holds weight
// rows 0 and 1 (low and high half), Z1 rows 2 and 3; Z2-Z9 activation
// rows 0-7, each broadcast to both halves; Z16+8p+j accumulates rows 2p
// and 2p+1 against activation j. Two inserts per 16 FMAs: the other
// shape (weights broadcast, activations paired) needs four.
#define F32T8STEP(off) \
	VMOVUPS off(SI), Y0 \
	VINSERTF64X4 $1, off(SI)(R12*1), Z0, Z0 \
	VMOVUPS off(SI)(R12*2), Y1 \
	VINSERTF64X4 $1, off(SI)(R15*1), Z1, Z1 \
	VBROADCASTF64X4 off(AX), Z2 \
	VBROADCASTF64X4 off(AX)(R13*1), Z3 \
	VBROADCASTF64X4 off(AX)(R13*2), Z4 \
	VBROADCASTF64X4 off(AX)(R14*1), Z5 \
	VBROADCASTF64X4 off(BX), Z6 \
	VBROADCASTF64X4 off(BX)(R13*1), Z7 \
	VBROADCASTF64X4 off(BX)(R13*2), Z8 \
	VBROADCASTF64X4 off(BX)(R14*1), Z9 \
	VFMADD231PS Z2, Z0, Z16 \
	VFMADD231PS Z3, Z0, Z17 \
	VFMADD231PS Z4, Z0, Z18 \
	VFMADD231PS Z5, Z0, Z19 \
	VFMADD231PS Z6, Z0, Z20 \
	VFMADD231PS Z7, Z0, Z21 \
	VFMADD231PS Z8, Z0, Z22 \
	VFMADD231PS Z9, Z0, Z23 \
	VFMADD231PS Z2, Z1, Z24 \
	VFMADD231PS Z3, Z1, Z25 \
	VFMADD231PS Z4, Z1, Z26 \
	VFMADD231PS Z5, Z1, Z27 \
	VFMADD231PS Z6, Z1, Z28 \
	VFMADD231PS Z7, Z1, Z29 \
	VFMADD231PS Z8, Z1, Z30 \
	VFMADD231PS Z9, Z1, Z31

// F32T8LO and F32T8HI move four accumulators' low or high halves (one
// weight row against four activations) to Y0-Y3, which VHADDPS can
// address; F32T8RED reduces them as dotF32Tile2x4 does
// (((x0+x1)+(x2+x3)) + ((x4+x5)+(x6+x7)) per activation) and stores the
// four results at off(R9).
#define F32T8LO(a, b, c, d) \
	VMOVAPS a, Y0 \
	VMOVAPS b, Y1 \
	VMOVAPS c, Y2 \
	VMOVAPS d, Y3

#define F32T8HI(a, b, c, d) \
	VEXTRACTF64X4 $1, a, Y0 \
	VEXTRACTF64X4 $1, b, Y1 \
	VEXTRACTF64X4 $1, c, Y2 \
	VEXTRACTF64X4 $1, d, Y3

#define F32T8RED(off) \
	VHADDPS Y1, Y0, Y8 \
	VHADDPS Y3, Y2, Y9 \
	VHADDPS Y9, Y8, Y10 \
	VEXTRACTF128 $1, Y10, X11 \
	VADDPS X11, X10, X10 \
	VMOVUPS X10, off(R9)

// func dotF32Tile4x8AVX512(w *float32, wstride int, x *float32, xstride int, n int, out *[32]float32)
// out[8r+j] = w_r · x_j for four weight rows (wstride bytes apart) and
// eight activation rows (xstride bytes apart); n must be a multiple of 8.
// Each result is bit-identical to dotF32AVX2. 16 FMAs per 12 loads (the
// 2×4 ymm tile does 8 per 6) on 16 accumulators; the next four weight
// rows are prefetched, one line of each per 16 columns, as the 2×4 tile
// does for its next pair.
TEXT ·dotF32Tile4x8AVX512(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), R12
	MOVQ x+16(FP), AX
	MOVQ xstride+24(FP), R13
	MOVQ n+32(FP), CX
	MOVQ out+40(FP), R9
	LEAQ (R12)(R12*2), R15
	LEAQ (R13)(R13*2), R14
	LEAQ (AX)(R13*4), BX
	LEAQ (SI)(R12*4), R8 // the next four weight rows
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

t8loop16:
	CMPQ CX, $16
	JLT  t8tail
	PREFETCHT0 (R8)
	PREFETCHT0 (R8)(R12*1)
	PREFETCHT0 (R8)(R12*2)
	PREFETCHT0 (R8)(R15*1)
	F32T8STEP(0)
	F32T8STEP(32)
	ADDQ $64, SI
	ADDQ $64, R8
	ADDQ $64, AX
	ADDQ $64, BX
	SUBQ $16, CX
	JMP  t8loop16

t8tail:
	CMPQ CX, $8
	JLT  t8reduce
	F32T8STEP(0)

t8reduce:
	F32T8LO(Y16, Y17, Y18, Y19)
	F32T8RED(0)
	F32T8LO(Y20, Y21, Y22, Y23)
	F32T8RED(16)
	F32T8HI(Z16, Z17, Z18, Z19)
	F32T8RED(32)
	F32T8HI(Z20, Z21, Z22, Z23)
	F32T8RED(48)
	F32T8LO(Y24, Y25, Y26, Y27)
	F32T8RED(64)
	F32T8LO(Y28, Y29, Y30, Y31)
	F32T8RED(80)
	F32T8HI(Z24, Z25, Z26, Z27)
	F32T8RED(96)
	F32T8HI(Z28, Z29, Z30, Z31)
	F32T8RED(112)
	VZEROUPPER
	RET

// Q8_0 batch 1, two rows per zmm register: the low half runs row r's
// blocks, the high half row r+1's, against the same activation block
// broadcast to both halves. The integer sums come from VPDPBUSD on the
// activations offset by 128 (unsigned) less VPDPBUSD of 128 by the
// weights, which gives the same int32 lanes as dotQ8_0AVX2's
// VPMADDUBSW+VPMADDWD; the float steps are its own, in its order.

// Q8MV2HSUM(acc, lo, hi, hix, tmpx, dst): the two rows' sums from acc (lo its
// low half), each reduced as Q8MVHSUM does, to dst and dst+4.
#define Q8MV2HSUM(acc, lo, hi, hix, tmpx, dst) \
	VMOVAPS lo, Y0 \
	VEXTRACTF64X4 $1, acc, hi \
	VEXTRACTF128 $1, Y0, tmpx \
	VADDPS tmpx, X0, X0 \
	VHADDPS X0, X0, X0 \
	VHADDPS X0, X0, X0 \
	MOVSS X0, dst \
	VEXTRACTF128 $1, hi, tmpx \
	VADDPS tmpx, hix, hix \
	VHADDPS hix, hix, hix \
	VHADDPS hix, hix, hix \
	MOVSS hix, 4+dst

// func dotQ8_0Rows2BlockAVX512(w *byte, xu *uint8, xd *float32, rows, nb, stride int, out *float32)
// out[i] = row i of w (nb Q8_0 blocks, rows stride bytes apart) · the
// activations given as x+128 (xu) with their scales xd, for i < rows;
// rows must be even and nb > 0. Each result is bit-identical to
// dotQ8_0AVX2.
TEXT ·dotQ8_0Rows2BlockAVX512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ rows+24(FP), BX
	MOVQ nb+32(FP), AX
	MOVQ stride+40(FP), R12
	MOVQ out+48(FP), R9
	// Prefetch 24 KiB ahead of both rows: the hardware prefetcher does
	// not follow two interleaved streams (6-8 GB/s from memory without
	// this, against 28 for the AVX2 kernel's one stream; 35 with it; 4 and
	// 6 KiB ahead gave 15 and 27).
	MOVQ $24576, R13
	LEAQ 24576(R12), R14
	MOVL $0x80808080, R8
	VPBROADCASTD R8, Z15

q8z2row:
	TESTQ BX, BX
	JEQ   q8z2done
	MOVQ SI, R10
	MOVQ xu+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ AX, CX
	VPXORD Z16, Z16, Z16

q8z2loop:
	PREFETCHT0 (R10)(R13*1)
	PREFETCHT0 (R10)(R14*1)
	VMOVDQU 2(R10), Y1
	VINSERTI64X4 $1, 2(R10)(R12*1), Z1, Z1
	VBROADCASTI64X4 (DI), Z2
	VPXORD Z3, Z3, Z3
	VPDPBUSD Z1, Z15, Z3
	VPXORD Z4, Z4, Z4
	VPDPBUSD Z1, Z2, Z4
	VPSUBD Z3, Z4, Z4
	VCVTDQ2PS Z4, Z4
	VBROADCASTSS (DX), Z5
	VMULPS Z5, Z4, Z4
	VPBROADCASTW (R10), X6
	VPBROADCASTW (R10)(R12*1), X7
	VINSERTI128 $1, X7, Y6, Y6
	VCVTPH2PS Y6, Z6
	VFMADD231PS Z6, Z4, Z16
	ADDQ $34, R10
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ  q8z2loop

	Q8MV2HSUM(Z16, Y16, Y1, X1, X2, 0(R9))
	ADDQ $8, R9
	LEAQ (SI)(R12*2), SI
	SUBQ $2, BX
	JMP  q8z2row

q8z2done:
	VZEROUPPER
	RET

#define HSUM512(acc, accx, tmpx, dst) \
	VEXTRACTF128 $1, acc, tmpx \
	VADDPS tmpx, accx, accx \
	VHADDPS accx, accx, accx \
	VHADDPS accx, accx, accx \
	MOVSS accx, dst

// Q8T2X(xp, dp, acc): one activation row against both weight rows of the
// 2×4 tile. Z8 = rows 0 and 1 of the block, Z10 = -Σ128·w per lane, Z12 =
// their f16 scales as floats (row 0 low, row 1 high).
#define Q8T2X(xp, dp, acc) \
	VBROADCASTI64X4 (xp), Z14 \
	VMOVDQA32 Z10, Z18 \
	VPDPBUSD Z8, Z14, Z18 \
	VCVTDQ2PS Z18, Z18 \
	VBROADCASTSS (dp), Z15 \
	VMULPS Z15, Z18, Z18 \
	VFMADD231PS Z12, Z18, acc

// func dotQ8_0Tile2x4AVX512(w0, w1 *byte, x0, x1, x2, x3 *uint8, d0, d1, d2, d3 *float32, nb int, out *[8]float32)
// dotQ8_0Tile2x4VNNI with both weight rows in one zmm register: half the
// VPDPBUSDs, conversions and FMAs. Results bit-identical to dotQ8_0AVX2.
TEXT ·dotQ8_0Tile2x4AVX512(SB), NOSPLIT, $0-96
	MOVQ w0+0(FP), SI
	MOVQ w1+8(FP), R8
	MOVQ x0+16(FP), AX
	MOVQ x1+24(FP), BX
	MOVQ x2+32(FP), DX
	MOVQ x3+40(FP), DI
	MOVQ d0+48(FP), R10
	MOVQ d1+56(FP), R11
	MOVQ d2+64(FP), R12
	MOVQ d3+72(FP), R13
	MOVQ nb+80(FP), CX
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	MOVL $0x80808080, R9
	VPBROADCASTD R9, Z9

z2loop:
	TESTQ CX, CX
	JEQ   z2done
	VMOVDQU 2(SI), Y8
	VINSERTI64X4 $1, 2(R8), Z8, Z8
	VPXORD Z10, Z10, Z10
	VPDPBUSD Z8, Z9, Z10
	VPSUBD Z10, Z21, Z10
	VPBROADCASTW (SI), X12
	VPBROADCASTW (R8), X13
	VINSERTI128 $1, X13, Y12, Y12
	VCVTPH2PS Y12, Z12
	Q8T2X(AX, R10, Z16)
	Q8T2X(BX, R11, Z17)
	Q8T2X(DX, R12, Z19)
	Q8T2X(DI, R13, Z20)
	ADDQ $34, SI
	ADDQ $34, R8
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, DX
	ADDQ $32, DI
	ADDQ $4, R10
	ADDQ $4, R11
	ADDQ $4, R12
	ADDQ $4, R13
	DECQ CX
	JMP  z2loop

z2done:
	MOVQ out+88(FP), R9
	VMOVAPS Y16, Y0
	VEXTRACTF64X4 $1, Z16, Y4
	VMOVAPS Y17, Y1
	VEXTRACTF64X4 $1, Z17, Y5
	VMOVAPS Y19, Y2
	VEXTRACTF64X4 $1, Z19, Y6
	VMOVAPS Y20, Y3
	VEXTRACTF64X4 $1, Z20, Y7
	HSUM512(Y0, X0, X8, 0(R9))
	HSUM512(Y1, X1, X8, 4(R9))
	HSUM512(Y2, X2, X8, 8(R9))
	HSUM512(Y3, X3, X8, 12(R9))
	HSUM512(Y4, X4, X8, 16(R9))
	HSUM512(Y5, X5, X8, 20(R9))
	HSUM512(Y6, X6, X8, 24(R9))
	HSUM512(Y7, X7, X8, 28(R9))
	VZEROUPPER
	RET

// QROUND(z, t): z = x·id (Z1 = id) rounded half away from zero, as int32,
// exactly as math.Round does it: t = trunc(p), then ±1 where |p − t| ≥ ½
// (p − t is exact here). Z10 = ½, Z11 = 1.0, Z12 = sign bit, Z13 = its
// complement.
#define QROUND(z, t) \
	VMULPS Z1, z, z \
	VRNDSCALEPS $3, z, t \
	VSUBPS t, z, Z14 \
	VPANDD Z13, Z14, Z14 \
	VCMPPS $29, Z10, Z14, K1 \
	VPANDD Z12, z, z \
	VPORD Z11, z, z \
	VADDPS z, t, K1, t \
	VCVTTPS2DQ t, z

// func quantizeQ8AVX512(x *float32, qs *int8, qu *uint8, d *float32, sum *int32, nb int)
// quantizeQ8Go for nb > 0 blocks, bit for bit: the same float operations
// (max of |x|, amax/127, 1/d, x·id) and the same rounding.
TEXT ·quantizeQ8AVX512(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ qs+8(FP), DI
	MOVQ qu+16(FP), R8
	MOVQ d+24(FP), DX
	MOVQ sum+32(FP), R9
	MOVQ nb+40(FP), CX
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z10
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z11
	MOVL $0x80000000, AX
	VPBROADCASTD AX, Z12
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z13
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Y15
	MOVL $127, AX
	VCVTSI2SSL AX, X9, X9

qzblock:
	VMOVUPS (SI), Z2
	VMOVUPS 64(SI), Z3
	VPANDD Z13, Z2, Z4
	VPANDD Z13, Z3, Z5
	VMAXPS Z5, Z4, Z4
	VEXTRACTF64X4 $1, Z4, Y5
	VMAXPS Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0x4e, X4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0xb1, X4, X5
	VMAXSS X5, X4, X4
	VDIVSS X9, X4, X4 // d = amax/127
	VMOVSS X4, (DX)
	VXORPS X1, X1, X1
	VUCOMISS X1, X4
	JEQ  qzzero
	MOVL $0x3f800000, AX
	VMOVD AX, X1
	VDIVSS X4, X1, X1 // id = 1/d

qzzero:
	VBROADCASTSS X1, Z1
	QROUND(Z2, Z6)
	QROUND(Z3, Z7)
	VPADDD Z3, Z2, Z4
	VPMOVDB Z2, X2
	VPMOVDB Z3, X3
	VINSERTI128 $1, X3, Y2, Y2
	VMOVDQU Y2, (DI)
	VPXOR Y15, Y2, Y2
	VMOVDQU Y2, (R8)
	VEXTRACTI64X4 $1, Z4, Y5
	VPADDD Y5, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4e, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xb1, X4, X5
	VPADDD X5, X4, X4
	VMOVD X4, (R9)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $4, DX
	ADDQ $4, R9
	DECQ CX
	JNZ  qzblock
	VZEROUPPER
	RET
