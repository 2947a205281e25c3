//go:build amd64 && !purego

#include "textflag.h"

// func dotF32AVX2(a, b *float32, n int) float32
// n must be a multiple of 8. One accumulator, reduced as
// ((x0+x1)+(x2+x3)) + ((x4+x5)+(x6+x7)), the exact order of
// dotF32Tile2x4, so batched and single products agree bit for bit.
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0

f32loop8:
	CMPQ CX, $8
	JLT  f32reduce
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  f32loop8

f32reduce:
	VHADDPS Y0, Y0, Y0
	VHADDPS Y0, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDSS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotF32Tile2x4(w0, w1, x0, x1, x2, x3 *float32, n int, out *[8]float32)
// out[4*r+j] = w_r · x_j for two weight rows and four activation rows;
// n must be a multiple of 8.
TEXT ·dotF32Tile2x4(SB), NOSPLIT, $0-64
	MOVQ w0+0(FP), SI
	MOVQ w1+8(FP), R8
	MOVQ x0+16(FP), AX
	MOVQ x1+24(FP), BX
	MOVQ x2+32(FP), DX
	MOVQ x3+40(FP), DI
	MOVQ n+48(FP), CX
	MOVQ out+56(FP), R9
	// R10, R11: one and two rows past w1 in bytes (a weight's rows are
	// contiguous), so the next pair of rows streams in while this pair is
	// computed: with several activation rows the tile is compute-bound
	// and waits on memory at every new pair without it (8 streams of the
	// 110M model: 188 → 240 tokens/s).
	MOVQ CX, R10
	SHLQ $2, R10
	LEAQ (R10)(R10*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

tileloop:
	CMPQ CX, $8
	JLT  tilereduce
	PREFETCHT0 (R8)(R10*1)
	PREFETCHT0 (R8)(R11*1)
	VMOVUPS (SI), Y8
	VMOVUPS (R8), Y9
	VMOVUPS (AX), Y10
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y10, Y9, Y4
	VMOVUPS (BX), Y11
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y11, Y9, Y5
	VMOVUPS (DX), Y12
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y12, Y9, Y6
	VMOVUPS (DI), Y13
	VFMADD231PS Y13, Y8, Y3
	VFMADD231PS Y13, Y9, Y7
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  tileloop

tilereduce:
	VHADDPS Y1, Y0, Y8
	VHADDPS Y3, Y2, Y9
	VHADDPS Y9, Y8, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPS X11, X10, X10
	VMOVUPS X10, (R9)
	VHADDPS Y5, Y4, Y8
	VHADDPS Y7, Y6, Y9
	VHADDPS Y9, Y8, Y10
	VEXTRACTF128 $1, Y10, X11
	VADDPS X11, X10, X10
	VMOVUPS X10, 16(R9)
	VZEROUPPER
	RET

// func dotF16AVX2(w *byte, x *float32, n int) float32
// n must be a multiple of 8.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

f16loop16:
	CMPQ CX, $16
	JLT  f16loop8
	VCVTPH2PS (SI), Y4
	VCVTPH2PS 16(SI), Y5
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  f16loop16

f16loop8:
	CMPQ CX, $8
	JLT  f16reduce
	VCVTPH2PS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  f16loop8

f16reduce:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotQ8_0AVX2(w *byte, xq *int8, xd *float32, nb int) float32
// w holds nb Q8_0 blocks (f16 scale, 32 int8); xq nb*32 int8 activations
// in [-127,127]; xd their nb scales. Per block: acc += (float(Σ w·x)·xd)·dw,
// the same operations in the same order as the tiles below, so batched and
// single results agree bit for bit.
TEXT ·dotQ8_0AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ nb+24(FP), CX
	VXORPS Y0, Y0, Y0
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15

q8loop:
	TESTQ CX, CX
	JEQ   q8done
	VMOVDQU 2(SI), Y9
	VPSIGNB Y9, Y9, Y8
	MOVWLZX (SI), AX
	VMOVD AX, X10
	VCVTPH2PS X10, X10
	VBROADCASTSS X10, Y10
	VMOVDQU (DI), Y11
	VPSIGNB Y9, Y11, Y11
	VPMADDUBSW Y11, Y8, Y11
	VPMADDWD Y15, Y11, Y11
	VCVTDQ2PS Y11, Y11
	VBROADCASTSS (DX), Y12
	VMULPS Y12, Y11, Y11
	VFMADD231PS Y10, Y11, Y0
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JMP  q8loop

q8done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

#define Q8X(xp, dp, acc) \
	VMOVDQU (xp), Y11 \
	VPSIGNB Y9, Y11, Y11 \
	VPMADDUBSW Y11, Y8, Y11 \
	VPMADDWD Y15, Y11, Y11 \
	VCVTDQ2PS Y11, Y11 \
	VBROADCASTSS (dp), Y12 \
	VMULPS Y12, Y11, Y11 \
	VFMADD231PS Y10, Y11, acc

#define Q8XVNNI(xp, dp, acc) \
	VMOVDQU (xp), Y11 \
	VPSIGNB Y9, Y11, Y11 \
	VPXOR Y13, Y13, Y13 \
	VPDPBUSD Y11, Y8, Y13 \
	VCVTDQ2PS Y13, Y11 \
	VBROADCASTSS (dp), Y12 \
	VMULPS Y12, Y11, Y11 \
	VFMADD231PS Y10, Y11, acc

#define HSUM(acc, accx, tmpx, dst) \
	VEXTRACTF128 $1, acc, tmpx \
	VADDPS tmpx, accx, accx \
	VHADDPS accx, accx, accx \
	VHADDPS accx, accx, accx \
	MOVSS accx, dst

#define Q8TILE(name, XOP) \
TEXT name(SB), NOSPLIT, $0-88 \
	MOVQ w+0(FP), SI \
	MOVQ x0+8(FP), AX \
	MOVQ x1+16(FP), BX \
	MOVQ x2+24(FP), DX \
	MOVQ x3+32(FP), DI \
	MOVQ d0+40(FP), R10 \
	MOVQ d1+48(FP), R11 \
	MOVQ d2+56(FP), R12 \
	MOVQ d3+64(FP), R13 \
	MOVQ nb+72(FP), CX \
	MOVQ out+80(FP), R9 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	MOVL $0x00010001, R8 \
	VMOVD R8, X15 \
	VPBROADCASTD X15, Y15 \
loop: \
	TESTQ CX, CX \
	JEQ   done \
	VMOVDQU 2(SI), Y9 \
	VPSIGNB Y9, Y9, Y8 \
	MOVWLZX (SI), R8 \
	VMOVD R8, X10 \
	VCVTPH2PS X10, X10 \
	VBROADCASTSS X10, Y10 \
	XOP(AX, R10, Y0) \
	XOP(BX, R11, Y1) \
	XOP(DX, R12, Y2) \
	XOP(DI, R13, Y3) \
	ADDQ $34, SI \
	ADDQ $32, AX \
	ADDQ $32, BX \
	ADDQ $32, DX \
	ADDQ $32, DI \
	ADDQ $4, R10 \
	ADDQ $4, R11 \
	ADDQ $4, R12 \
	ADDQ $4, R13 \
	DECQ CX \
	JMP  loop \
done: \
	HSUM(Y0, X0, X4, 0(R9)) \
	HSUM(Y1, X1, X4, 4(R9)) \
	HSUM(Y2, X2, X4, 8(R9)) \
	HSUM(Y3, X3, X4, 12(R9)) \
	VZEROUPPER \
	RET

// func dotQ8_0Tile1x4(w *byte, x0, x1, x2, x3 *int8, d0, d1, d2, d3 *float32, nb int, out *[4]float32)
// out[j] = w · x_j for one Q8_0 weight row and four quantized activation
// rows, each bit-identical to dotQ8_0AVX2.
Q8TILE(·dotQ8_0Tile1x4, Q8X)

// func dotQ8_0Tile1x4VNNI(w *byte, x0, x1, x2, x3 *int8, d0, d1, d2, d3 *float32, nb int, out *[4]float32)
// The same with VPDPBUSD (AVX512-VNNI on 256-bit registers): the int32
// lanes equal those of VPMADDUBSW+VPMADDWD, so results are identical.
Q8TILE(·dotQ8_0Tile1x4VNNI, Q8XVNNI)

// func axpyAVX2(dst, x *float32, a float32, n int)
// dst[i] += a*x[i]; n must be a multiple of 8.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	VBROADCASTSS a+16(FP), Y0
	MOVQ n+24(FP), CX

axpyloop:
	CMPQ CX, $8
	JLT  axpydone
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  axpyloop

axpydone:
	VZEROUPPER
	RET

#define Q4KCHUNK(qoff, xoff, soff) \
	VMOVDQU qoff(SI), Y1 \
	VPAND Y14, Y1, Y2 \
	VPSRLW $4, Y1, Y3 \
	VPAND Y14, Y3, Y3 \
	VMOVDQU xoff(DI), Y4 \
	VPMADDUBSW Y4, Y2, Y2 \
	VPMADDWD Y15, Y2, Y2 \
	VCVTDQ2PS Y2, Y2 \
	VBROADCASTSS soff(DX), Y5 \
	VFMADD231PS Y5, Y2, Y0 \
	VMOVDQU (xoff+32)(DI), Y4 \
	VPMADDUBSW Y4, Y3, Y3 \
	VPMADDWD Y15, Y3, Y3 \
	VCVTDQ2PS Y3, Y3 \
	VBROADCASTSS (soff+4)(DX), Y5 \
	VFMADD231PS Y5, Y3, Y0

// func q4kBlockAVX2(qs *byte, x *int8, scales *[8]float32) float32
// Σ_j scales[j] · Σ_l q_j[l]·x[32j+l] over the 8 sub-blocks of one Q4_K
// block's 128 quant bytes (sub-block 2k in the low nibbles of bytes
// 32k..32k+31, 2k+1 in the high nibbles).
TEXT ·q4kBlockAVX2(SB), NOSPLIT, $0-28
	MOVQ qs+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ scales+16(FP), DX
	VXORPS Y0, Y0, Y0
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	Q4KCHUNK(0, 0, 0)
	Q4KCHUNK(32, 64, 8)
	Q4KCHUNK(64, 128, 16)
	Q4KCHUNK(96, 192, 24)
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

#define Q6G(qloff, qlshift, qhoff, qhshift, xoff, soff) \
	VMOVDQU qloff(SI), Y1 \
	VPSRLW $qlshift, Y1, Y1 \
	VPAND Y14, Y1, Y1 \
	VMOVDQU qhoff(SI), Y2 \
	VPSRLW $qhshift, Y2, Y2 \
	VPAND Y13, Y2, Y2 \
	VPSLLW $4, Y2, Y2 \
	VPOR Y2, Y1, Y1 \
	VMOVDQU xoff(DI), Y3 \
	VPMADDUBSW Y3, Y1, Y4 \
	VPMADDWD Y15, Y4, Y4 \
	VPMADDUBSW Y3, Y12, Y6 \
	VPMADDWD Y15, Y6, Y6 \
	VPSLLD $5, Y6, Y6 \
	VPSUBD Y6, Y4, Y4 \
	VCVTDQ2PS Y4, Y4 \
	VBROADCASTSS soff(DX), X5 \
	VBROADCASTSS (soff+4)(DX), X6 \
	VINSERTF128 $1, X6, Y5, Y5 \
	VFMADD231PS Y5, Y4, Y0

// func q6kBlockAVX2(blk *byte, x *int8, scales *[16]float32) float32
// One Q6_K block against 256 activation quants: group (h,g) of 32
// elements uses scales[2(4h+g)] for its first 16 and [2(4h+g)+1] for the
// rest (already multiplied by d and the activation scale).
TEXT ·q6kBlockAVX2(SB), NOSPLIT, $0-28
	MOVQ blk+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ scales+16(FP), DX
	VXORPS Y0, Y0, Y0
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x03030303, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $0x01010101, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	Q6G(0, 0, 128, 0, 0, 0)
	Q6G(32, 0, 128, 2, 32, 8)
	Q6G(0, 4, 128, 4, 64, 16)
	Q6G(32, 4, 128, 6, 96, 24)
	Q6G(64, 0, 160, 0, 128, 32)
	Q6G(96, 0, 160, 2, 160, 40)
	Q6G(64, 4, 160, 4, 192, 48)
	Q6G(96, 4, 160, 6, 224, 56)
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotQ4_0AVX2(w *byte, xq *int8, xd *float32, nb int) float32
// w holds nb Q4_0 blocks (f16 scale, 16 bytes: element j in the low
// nibble of byte j, element j+16 in the high nibble, offset 8).
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ nb+24(FP), CX
	VXORPS Y0, Y0, Y0
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x08080808, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13

q40loop:
	TESTQ CX, CX
	JEQ   q40done
	VMOVDQU 2(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1
	VPSUBB Y13, Y1, Y9
	VPSIGNB Y9, Y9, Y8
	MOVWLZX (SI), AX
	VMOVD AX, X10
	VCVTPH2PS X10, X10
	VBROADCASTSS X10, Y10
	VMOVDQU (DI), Y11
	VPSIGNB Y9, Y11, Y11
	VPMADDUBSW Y11, Y8, Y11
	VPMADDWD Y15, Y11, Y11
	VCVTDQ2PS Y11, Y11
	VBROADCASTSS (DX), Y12
	VMULPS Y12, Y11, Y11
	VFMADD231PS Y10, Y11, Y0
	ADDQ $18, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JMP  q40loop

q40done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// Q8X2(xp, dp, acc0, acc1): one activation row against both weight rows
// of a 2×4 tile. Y14 = x+128 (unsigned), Y15 = broadcast activation scale;
// Y10/Y11 hold -Σ128·w per lane for rows 0/1, so VPDPBUSD yields Σx·w.
#define Q8X2(xp, dp, acc0, acc1) \
	VMOVDQU (xp), Y14 \
	VBROADCASTSS (dp), Y15 \
	VMOVDQA32 Y10, Y18 \
	VPDPBUSD Y8, Y14, Y18 \
	VCVTDQ2PS Y18, Y18 \
	VMULPS Y15, Y18, Y18 \
	VFMADD231PS Y12, Y18, acc0 \
	VMOVDQA32 Y11, Y19 \
	VPDPBUSD Y9, Y14, Y19 \
	VCVTDQ2PS Y19, Y19 \
	VMULPS Y15, Y19, Y19 \
	VFMADD231PS Y13, Y19, acc1

// func dotQ8_0Tile2x4VNNI(w0, w1 *byte, x0, x1, x2, x3 *uint8, d0, d1, d2, d3 *float32, nb int, out *[8]float32)
// out[4r+j] = w_r · x_j for two Q8_0 weight rows and four activation rows
// given as x+128 (unsigned bytes). Needs AVX512-VNNI and AVX512VL; each
// result is bit-identical to dotQ8_0AVX2 (same integer lanes, same float
// operations in the same order).
TEXT ·dotQ8_0Tile2x4VNNI(SB), NOSPLIT, $0-96
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
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VPXORD Y17, Y17, Y17
	MOVL $0x80808080, R9
	VMOVD R9, X16
	VPBROADCASTD X16, Y16

t2loop:
	TESTQ CX, CX
	JEQ   t2done
	VMOVDQU 2(SI), Y8
	VMOVDQU 2(R8), Y9
	VMOVDQA32 Y17, Y10
	VPDPBUSD Y8, Y16, Y10
	VPSUBD Y10, Y17, Y10
	VMOVDQA32 Y17, Y11
	VPDPBUSD Y9, Y16, Y11
	VPSUBD Y11, Y17, Y11
	MOVWLZX (SI), R9
	VMOVD R9, X12
	VCVTPH2PS X12, X12
	VBROADCASTSS X12, Y12
	MOVWLZX (R8), R9
	VMOVD R9, X13
	VCVTPH2PS X13, X13
	VBROADCASTSS X13, Y13
	Q8X2(AX, R10, Y0, Y4)
	Q8X2(BX, R11, Y1, Y5)
	Q8X2(DX, R12, Y2, Y6)
	Q8X2(DI, R13, Y3, Y7)
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
	JMP  t2loop

t2done:
	MOVQ out+88(FP), R9
	HSUM(Y0, X0, X8, 0(R9))
	HSUM(Y1, X1, X8, 4(R9))
	HSUM(Y2, X2, X8, 8(R9))
	HSUM(Y3, X3, X8, 12(R9))
	HSUM(Y4, X4, X8, 16(R9))
	HSUM(Y5, X5, X8, 20(R9))
	HSUM(Y6, X6, X8, 24(R9))
	HSUM(Y7, X7, X8, 28(R9))
	VZEROUPPER
	RET
