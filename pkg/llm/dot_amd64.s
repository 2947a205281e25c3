//go:build amd64

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
// in [-127,127]; xd their nb scales. The operations per block and the
// final reduction match dotQ8_0Tile1x4 exactly.
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
	VMOVDQU (DI), Y11
	VPSIGNB Y9, Y11, Y11
	VPMADDUBSW Y11, Y8, Y11
	VPMADDWD Y15, Y11, Y11
	VCVTDQ2PS Y11, Y11
	VMULSS (DX), X10, X12
	VBROADCASTSS X12, Y12
	VFMADD231PS Y12, Y11, Y0
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
	VMULSS (dp), X10, X12 \
	VBROADCASTSS X12, Y12 \
	VFMADD231PS Y12, Y11, acc

#define HSUM(acc, accx, tmpx, dst) \
	VEXTRACTF128 $1, acc, tmpx \
	VADDPS tmpx, accx, accx \
	VHADDPS accx, accx, accx \
	VHADDPS accx, accx, accx \
	MOVSS accx, dst

// func dotQ8_0Tile1x4(w *byte, x0, x1, x2, x3 *int8, d0, d1, d2, d3 *float32, nb int, out *[4]float32)
// out[j] = w · x_j for one Q8_0 weight row and four quantized activation
// rows, each bit-identical to dotQ8_0AVX2.
TEXT ·dotQ8_0Tile1x4(SB), NOSPLIT, $0-88
	MOVQ w+0(FP), SI
	MOVQ x0+8(FP), AX
	MOVQ x1+16(FP), BX
	MOVQ x2+24(FP), DX
	MOVQ x3+32(FP), DI
	MOVQ d0+40(FP), R10
	MOVQ d1+48(FP), R11
	MOVQ d2+56(FP), R12
	MOVQ d3+64(FP), R13
	MOVQ nb+72(FP), CX
	MOVQ out+80(FP), R9
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVL $0x00010001, R8
	VMOVD R8, X15
	VPBROADCASTD X15, Y15

q8tloop:
	TESTQ CX, CX
	JEQ   q8tdone
	VMOVDQU 2(SI), Y9
	VPSIGNB Y9, Y9, Y8
	MOVWLZX (SI), R8
	VMOVD R8, X10
	VCVTPH2PS X10, X10
	Q8X(AX, R10, Y0)
	Q8X(BX, R11, Y1)
	Q8X(DX, R12, Y2)
	Q8X(DI, R13, Y3)
	ADDQ $34, SI
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, DX
	ADDQ $32, DI
	ADDQ $4, R10
	ADDQ $4, R11
	ADDQ $4, R12
	ADDQ $4, R13
	DECQ CX
	JMP  q8tloop

q8tdone:
	HSUM(Y0, X0, X4, 0(R9))
	HSUM(Y1, X1, X4, 4(R9))
	HSUM(Y2, X2, X4, 8(R9))
	HSUM(Y3, X3, X4, 12(R9))
	VZEROUPPER
	RET
