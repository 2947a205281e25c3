//go:build amd64 && !purego

#include "textflag.h"

// Batch-1 F32 matrix-vector kernel. Decoding streams every weight once per
// token, so this loop must read memory as fast as the core can: it runs a
// whole block of rows in one call, eight rows at a time, one cache line of
// each row per iteration. Eight concurrent streams keep more misses in
// flight than four (per CPU-second on one core: 17.5 GB/s with four rows
// and a Go call per group, 21.5 with this loop, 18.5 for a plain
// four-accumulator sum of the same memory; prefetching by hand added
// nothing). Each row keeps one accumulator with the operations, order and
// final reduction of dotF32AVX2, so every result is bit-identical to the
// single-row kernel.

#define MVHSUM(acc, accx, tmpx, dst) \
	VHADDPS acc, acc, acc \
	VHADDPS acc, acc, acc \
	VEXTRACTF128 $1, acc, tmpx \
	VADDSS tmpx, accx, accx \
	MOVSS accx, dst

// func dotF32Rows8Block(w, x *float32, rows, n, stride int, out *float32)
// out[i] = Σ_{k<n} w[i·stride/4 + k]·x[k] for i < rows. rows must be a
// multiple of 8, n a multiple of 8, stride the row pitch in bytes.
TEXT ·dotF32Rows8Block(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ rows+16(FP), BX
	MOVQ n+24(FP), AX
	MOVQ stride+32(FP), R12
	MOVQ out+40(FP), R9
	LEAQ (R12)(R12*2), R15 // 3·stride

mvgroup:
	CMPQ BX, $8
	JLT  mvdone
	MOVQ SI, DX            // rows 0-3 of the group: DX + {0,1,2,3}·stride
	LEAQ (SI)(R12*4), R14  // rows 4-7
	MOVQ DI, R13
	MOVQ AX, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8

mvloop16:
	CMPQ CX, $16
	JLT  mvtail8
	VMOVUPS (R13), Y4
	VMOVUPS 32(R13), Y10
	VFMADD231PS (DX), Y4, Y0
	VFMADD231PS (DX)(R12*1), Y4, Y1
	VFMADD231PS (DX)(R12*2), Y4, Y2
	VFMADD231PS (DX)(R15*1), Y4, Y3
	VFMADD231PS (R14), Y4, Y5
	VFMADD231PS (R14)(R12*1), Y4, Y6
	VFMADD231PS (R14)(R12*2), Y4, Y7
	VFMADD231PS (R14)(R15*1), Y4, Y8
	VFMADD231PS 32(DX), Y10, Y0
	VFMADD231PS 32(DX)(R12*1), Y10, Y1
	VFMADD231PS 32(DX)(R12*2), Y10, Y2
	VFMADD231PS 32(DX)(R15*1), Y10, Y3
	VFMADD231PS 32(R14), Y10, Y5
	VFMADD231PS 32(R14)(R12*1), Y10, Y6
	VFMADD231PS 32(R14)(R12*2), Y10, Y7
	VFMADD231PS 32(R14)(R15*1), Y10, Y8
	ADDQ $64, DX
	ADDQ $64, R14
	ADDQ $64, R13
	SUBQ $16, CX
	JMP  mvloop16

mvtail8:
	CMPQ CX, $8
	JLT  mvreduce
	VMOVUPS (R13), Y4
	VFMADD231PS (DX), Y4, Y0
	VFMADD231PS (DX)(R12*1), Y4, Y1
	VFMADD231PS (DX)(R12*2), Y4, Y2
	VFMADD231PS (DX)(R15*1), Y4, Y3
	VFMADD231PS (R14), Y4, Y5
	VFMADD231PS (R14)(R12*1), Y4, Y6
	VFMADD231PS (R14)(R12*2), Y4, Y7
	VFMADD231PS (R14)(R15*1), Y4, Y8

mvreduce:
	MVHSUM(Y0, X0, X9, 0(R9))
	MVHSUM(Y1, X1, X9, 4(R9))
	MVHSUM(Y2, X2, X9, 8(R9))
	MVHSUM(Y3, X3, X9, 12(R9))
	MVHSUM(Y5, X5, X9, 16(R9))
	MVHSUM(Y6, X6, X9, 20(R9))
	MVHSUM(Y7, X7, X9, 24(R9))
	MVHSUM(Y8, X8, X9, 28(R9))
	ADDQ $32, R9
	LEAQ (SI)(R12*8), SI
	SUBQ $8, BX
	JMP  mvgroup

mvdone:
	VZEROUPPER
	RET

// Batch-1 Q8_0 kernel: a block of rows in one call (no Go call and slice
// checks per row), one row at a time with the operations and order of
// dotQ8_0AVX2 (each result bit-identical to it). The f16 weight scale is
// broadcast straight from memory (VPBROADCASTW, then VCVTPH2PS converts the
// same value in every lane) instead of through a general register. Two
// rows interleaved, sharing each activation load, measured 40 % slower
// than one row at a time on AMD EPYC (6.0 against 9.7 GB/s per
// CPU-second): this loop is bound by its integer instructions, not by the
// accumulator's latency, and the second row only adds pressure.

#define Q8MVHSUM(acc, accx, tmpx, dst) \
	VEXTRACTF128 $1, acc, tmpx \
	VADDPS tmpx, accx, accx \
	VHADDPS accx, accx, accx \
	VHADDPS accx, accx, accx \
	MOVSS accx, dst

// func dotQ8_0RowsBlock(w *byte, xq *int8, xd *float32, rows, nb, stride int, out *float32)
// out[i] = row i of w (nb Q8_0 blocks, rows stride bytes apart) · the
// quantized activations (xq, xd) for i < rows; nb must be > 0.
TEXT ·dotQ8_0RowsBlock(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ rows+24(FP), BX
	MOVQ nb+32(FP), AX
	MOVQ stride+40(FP), R12
	MOVQ out+48(FP), R9
	MOVL $0x00010001, R8
	VMOVD R8, X15
	VPBROADCASTD X15, Y15

q8mvrow:
	TESTQ BX, BX
	JEQ   q8mvdone
	MOVQ SI, R10
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), DX
	MOVQ AX, CX
	VXORPS Y0, Y0, Y0

q8mvloop:
	VMOVDQU 2(R10), Y9
	VPSIGNB Y9, Y9, Y8
	VPBROADCASTW (R10), X10
	VCVTPH2PS X10, Y10
	VMOVDQU (DI), Y11
	VPSIGNB Y9, Y11, Y11
	VPMADDUBSW Y11, Y8, Y11
	VPMADDWD Y15, Y11, Y11
	VCVTDQ2PS Y11, Y11
	VBROADCASTSS (DX), Y12
	VMULPS Y12, Y11, Y11
	VFMADD231PS Y10, Y11, Y0
	ADDQ $34, R10
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ  q8mvloop

	Q8MVHSUM(Y0, X0, X1, 0(R9))
	ADDQ $4, R9
	ADDQ R12, SI
	DECQ BX
	JMP  q8mvrow

q8mvdone:
	VZEROUPPER
	RET

// Attention's weighted sum of V rows: dst += a[t]·row t for every row, in
// order, dst held in registers 32 columns at a time across all rows. Each
// element sees the fused multiply-adds of one axpyAVX2 per row in the same
// order, so results are bit-identical to that loop, without a Go call per
// row and with four independent FMA chains instead of one store-to-load
// round trip per row.

// func axpyRowsAVX2(dst, v, a *float32, rows, n, stride int)
// dst[i] += a[t]·v[t·stride/4 + i] for t < rows, i < n; n a multiple of 8,
// rows > 0, stride in bytes.
TEXT ·axpyRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ v+8(FP), SI
	MOVQ n+32(FP), AX
	MOVQ stride+40(FP), R12

axr32:
	CMPQ AX, $32
	JLT  axr8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	MOVQ SI, R10
	MOVQ a+16(FP), DX
	MOVQ rows+24(FP), CX

axr32row:
	VBROADCASTSS (DX), Y4
	VFMADD231PS (R10), Y4, Y0
	VFMADD231PS 32(R10), Y4, Y1
	VFMADD231PS 64(R10), Y4, Y2
	VFMADD231PS 96(R10), Y4, Y3
	ADDQ R12, R10
	ADDQ $4, DX
	DECQ CX
	JNZ  axr32row
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, SI
	SUBQ $32, AX
	JMP  axr32

axr8:
	CMPQ AX, $8
	JLT  axrdone
	VMOVUPS (DI), Y0
	MOVQ SI, R10
	MOVQ a+16(FP), DX
	MOVQ rows+24(FP), CX

axr8row:
	VBROADCASTSS (DX), Y4
	VFMADD231PS (R10), Y4, Y0
	ADDQ R12, R10
	ADDQ $4, DX
	DECQ CX
	JNZ  axr8row
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, AX
	JMP  axr8

axrdone:
	VZEROUPPER
	RET
