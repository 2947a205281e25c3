//go:build amd64 && !purego

#include "textflag.h"

// W32ROWS(ra, rb, x0, x1, y0, y1): two rows of a 32-column AVX-512 tile at
// one depth step. Z0 and Z1 hold the step's 16 columns of each of the two
// B panels; the rows' A values at ra and rb are broadcast, and x0/x1 (row
// a) and y0/y1 (row b) accumulate.
#define W32ROWS(ra, rb, x0, x1, y0, y1) \
	VBROADCASTSS ra, Z2 \
	VBROADCASTSS rb, Z3 \
	VFMADD231PS  Z0, Z2, x0 \
	VFMADD231PS  Z1, Z2, x1 \
	VFMADD231PS  Z0, Z3, y0 \
	VFMADD231PS  Z1, Z3, y1

// W32LOAD: the step's two B vectors, and a prefetch 8 KiB ahead in each
// panel (for few rows B streams from memory).
#define W32LOAD \
	PREFETCHT0   8192(DI) \
	PREFETCHT0   8192(DI)(BX*1) \
	VMOVUPS      (DI), Z0 \
	VMOVUPS      (DI)(BX*1), Z1

// W32STORE(x0, x1): adds one row's accumulators to C at DX and moves DX to
// the next row.
#define W32STORE(x0, x1) \
	VADDPS  (DX), x0, x0 \
	VADDPS  64(DX), x1, x1 \
	VMOVUPS x0, (DX) \
	VMOVUPS x1, 64(DX) \
	ADDQ    R8, DX

// func kernel6x16AVX2(k int, a *float32, lda int, b, c *float32, ldc int)
// C[6×16] += A·B for six rows of A read in place (row i at a + i·lda
// floats) and a packed B panel (k groups of 16). Twelve accumulators
// Y4–Y15 hold the tile; per step two vectors of B and six broadcasts of A
// feed twelve FMAs.
TEXT ·kernel6x16AVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R9
	MOVQ b+24(FP), DI
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R8
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10 // 3·lda
	LEAQ (R9)(R9*4), R11 // 5·lda
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JZ    store

loop:
	PREFETCHT0   8192(DI)
	VMOVUPS      (DI), Y0
	VMOVUPS      32(DI), Y1
	VBROADCASTSS (SI), Y2
	VBROADCASTSS (SI)(R9*1), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS (SI)(R9*2), Y2
	VBROADCASTSS (SI)(R10*1), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS (SI)(R9*4), Y2
	VBROADCASTSS (SI)(R11*1), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15
	ADDQ         $4, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop

store:
	VADDPS  (DX), Y4, Y4
	VADDPS  32(DX), Y5, Y5
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ    R8, DX
	VADDPS  (DX), Y6, Y6
	VADDPS  32(DX), Y7, Y7
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	ADDQ    R8, DX
	VADDPS  (DX), Y8, Y8
	VADDPS  32(DX), Y9, Y9
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	ADDQ    R8, DX
	VADDPS  (DX), Y10, Y10
	VADDPS  32(DX), Y11, Y11
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, 32(DX)
	ADDQ    R8, DX
	VADDPS  (DX), Y12, Y12
	VADDPS  32(DX), Y13, Y13
	VMOVUPS Y12, (DX)
	VMOVUPS Y13, 32(DX)
	ADDQ    R8, DX
	VADDPS  (DX), Y14, Y14
	VADDPS  32(DX), Y15, Y15
	VMOVUPS Y14, (DX)
	VMOVUPS Y15, 32(DX)
	VZEROUPPER
	RET

// func kernel6x32AVX512(k int, a *float32, lda int, b *float32, stride int, c *float32, ldc int)
// C[6×32] += A·B for six rows of A read in place and two packed B panels,
// the second stride floats after the first (columns 0–15 and 16–31).
// Twelve accumulators Z4–Z15; per step two vectors of B (one per panel)
// and six broadcasts of A feed twelve FMAs, each element summed in the
// order of kernel6x16AVX2.
TEXT ·kernel6x32AVX512(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R9
	MOVQ b+24(FP), DI
	MOVQ stride+32(FP), BX
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, BX
	LEAQ (R9)(R9*2), R10 // 3·lda
	LEAQ (R9)(R9*4), R11 // 5·lda
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ CX, CX
	JZ    store

loop:
	W32LOAD
	W32ROWS((SI), (SI)(R9*1), Z4, Z5, Z6, Z7)
	W32ROWS((SI)(R9*2), (SI)(R10*1), Z8, Z9, Z10, Z11)
	W32ROWS((SI)(R9*4), (SI)(R11*1), Z12, Z13, Z14, Z15)
	ADDQ $4, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop

store:
	W32STORE(Z4, Z5)
	W32STORE(Z6, Z7)
	W32STORE(Z8, Z9)
	W32STORE(Z10, Z11)
	W32STORE(Z12, Z13)
	W32STORE(Z14, Z15)
	VZEROUPPER
	RET

// func kernel4x32AVX512(k int, a *float32, lda int, b *float32, stride int, c *float32, ldc int)
// kernel6x32AVX512 on four rows of A: the last rows of a product whose
// row count leaves four (a 16-token query: 6+6+4) are read in place
// instead of through zero rows. Eight accumulators Z4–Z11, the same
// order per element.
TEXT ·kernel4x32AVX512(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R9
	MOVQ b+24(FP), DI
	MOVQ stride+32(FP), BX
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, BX
	LEAQ (R9)(R9*2), R10 // 3·lda
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	TESTQ CX, CX
	JZ    store4

loop4:
	W32LOAD
	W32ROWS((SI), (SI)(R9*1), Z4, Z5, Z6, Z7)
	W32ROWS((SI)(R9*2), (SI)(R10*1), Z8, Z9, Z10, Z11)
	ADDQ $4, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop4

store4:
	W32STORE(Z4, Z5)
	W32STORE(Z6, Z7)
	W32STORE(Z8, Z9)
	W32STORE(Z10, Z11)
	VZEROUPPER
	RET
