//go:build amd64 && !purego

#include "textflag.h"

// Vector forms of exp32 and erf32 (model.go), eight floats at a time, for
// the softmax of attention and the exact GELU: with the scalar forms they
// were a third and a tenth of a 256-token pass. Each constant is stored
// eight times (AVX2 has no broadcast memory operand for FMA).
DATA actc<>+0(SB)/4, $0xc2ae0000
DATA actc<>+4(SB)/4, $0xc2ae0000
DATA actc<>+8(SB)/4, $0xc2ae0000
DATA actc<>+12(SB)/4, $0xc2ae0000
DATA actc<>+16(SB)/4, $0xc2ae0000
DATA actc<>+20(SB)/4, $0xc2ae0000
DATA actc<>+24(SB)/4, $0xc2ae0000
DATA actc<>+28(SB)/4, $0xc2ae0000
DATA actc<>+32(SB)/4, $0x3fb8aa3b
DATA actc<>+36(SB)/4, $0x3fb8aa3b
DATA actc<>+40(SB)/4, $0x3fb8aa3b
DATA actc<>+44(SB)/4, $0x3fb8aa3b
DATA actc<>+48(SB)/4, $0x3fb8aa3b
DATA actc<>+52(SB)/4, $0x3fb8aa3b
DATA actc<>+56(SB)/4, $0x3fb8aa3b
DATA actc<>+60(SB)/4, $0x3fb8aa3b
DATA actc<>+64(SB)/4, $0x3f317200
DATA actc<>+68(SB)/4, $0x3f317200
DATA actc<>+72(SB)/4, $0x3f317200
DATA actc<>+76(SB)/4, $0x3f317200
DATA actc<>+80(SB)/4, $0x3f317200
DATA actc<>+84(SB)/4, $0x3f317200
DATA actc<>+88(SB)/4, $0x3f317200
DATA actc<>+92(SB)/4, $0x3f317200
DATA actc<>+96(SB)/4, $0x35bfbe8e
DATA actc<>+100(SB)/4, $0x35bfbe8e
DATA actc<>+104(SB)/4, $0x35bfbe8e
DATA actc<>+108(SB)/4, $0x35bfbe8e
DATA actc<>+112(SB)/4, $0x35bfbe8e
DATA actc<>+116(SB)/4, $0x35bfbe8e
DATA actc<>+120(SB)/4, $0x35bfbe8e
DATA actc<>+124(SB)/4, $0x35bfbe8e
DATA actc<>+128(SB)/4, $0x39500d01
DATA actc<>+132(SB)/4, $0x39500d01
DATA actc<>+136(SB)/4, $0x39500d01
DATA actc<>+140(SB)/4, $0x39500d01
DATA actc<>+144(SB)/4, $0x39500d01
DATA actc<>+148(SB)/4, $0x39500d01
DATA actc<>+152(SB)/4, $0x39500d01
DATA actc<>+156(SB)/4, $0x39500d01
DATA actc<>+160(SB)/4, $0x3ab60b61
DATA actc<>+164(SB)/4, $0x3ab60b61
DATA actc<>+168(SB)/4, $0x3ab60b61
DATA actc<>+172(SB)/4, $0x3ab60b61
DATA actc<>+176(SB)/4, $0x3ab60b61
DATA actc<>+180(SB)/4, $0x3ab60b61
DATA actc<>+184(SB)/4, $0x3ab60b61
DATA actc<>+188(SB)/4, $0x3ab60b61
DATA actc<>+192(SB)/4, $0x3c088889
DATA actc<>+196(SB)/4, $0x3c088889
DATA actc<>+200(SB)/4, $0x3c088889
DATA actc<>+204(SB)/4, $0x3c088889
DATA actc<>+208(SB)/4, $0x3c088889
DATA actc<>+212(SB)/4, $0x3c088889
DATA actc<>+216(SB)/4, $0x3c088889
DATA actc<>+220(SB)/4, $0x3c088889
DATA actc<>+224(SB)/4, $0x3d2aaaab
DATA actc<>+228(SB)/4, $0x3d2aaaab
DATA actc<>+232(SB)/4, $0x3d2aaaab
DATA actc<>+236(SB)/4, $0x3d2aaaab
DATA actc<>+240(SB)/4, $0x3d2aaaab
DATA actc<>+244(SB)/4, $0x3d2aaaab
DATA actc<>+248(SB)/4, $0x3d2aaaab
DATA actc<>+252(SB)/4, $0x3d2aaaab
DATA actc<>+256(SB)/4, $0x3e2aaaab
DATA actc<>+260(SB)/4, $0x3e2aaaab
DATA actc<>+264(SB)/4, $0x3e2aaaab
DATA actc<>+268(SB)/4, $0x3e2aaaab
DATA actc<>+272(SB)/4, $0x3e2aaaab
DATA actc<>+276(SB)/4, $0x3e2aaaab
DATA actc<>+280(SB)/4, $0x3e2aaaab
DATA actc<>+284(SB)/4, $0x3e2aaaab
DATA actc<>+288(SB)/4, $0x3f000000
DATA actc<>+292(SB)/4, $0x3f000000
DATA actc<>+296(SB)/4, $0x3f000000
DATA actc<>+300(SB)/4, $0x3f000000
DATA actc<>+304(SB)/4, $0x3f000000
DATA actc<>+308(SB)/4, $0x3f000000
DATA actc<>+312(SB)/4, $0x3f000000
DATA actc<>+316(SB)/4, $0x3f000000
DATA actc<>+320(SB)/4, $0x3f800000
DATA actc<>+324(SB)/4, $0x3f800000
DATA actc<>+328(SB)/4, $0x3f800000
DATA actc<>+332(SB)/4, $0x3f800000
DATA actc<>+336(SB)/4, $0x3f800000
DATA actc<>+340(SB)/4, $0x3f800000
DATA actc<>+344(SB)/4, $0x3f800000
DATA actc<>+348(SB)/4, $0x3f800000
DATA actc<>+352(SB)/4, $0x3f3504f3
DATA actc<>+356(SB)/4, $0x3f3504f3
DATA actc<>+360(SB)/4, $0x3f3504f3
DATA actc<>+364(SB)/4, $0x3f3504f3
DATA actc<>+368(SB)/4, $0x3f3504f3
DATA actc<>+372(SB)/4, $0x3f3504f3
DATA actc<>+376(SB)/4, $0x3f3504f3
DATA actc<>+380(SB)/4, $0x3f3504f3
DATA actc<>+384(SB)/4, $0x40800000
DATA actc<>+388(SB)/4, $0x40800000
DATA actc<>+392(SB)/4, $0x40800000
DATA actc<>+396(SB)/4, $0x40800000
DATA actc<>+400(SB)/4, $0x40800000
DATA actc<>+404(SB)/4, $0x40800000
DATA actc<>+408(SB)/4, $0x40800000
DATA actc<>+412(SB)/4, $0x40800000
DATA actc<>+416(SB)/4, $0xc0800000
DATA actc<>+420(SB)/4, $0xc0800000
DATA actc<>+424(SB)/4, $0xc0800000
DATA actc<>+428(SB)/4, $0xc0800000
DATA actc<>+432(SB)/4, $0xc0800000
DATA actc<>+436(SB)/4, $0xc0800000
DATA actc<>+440(SB)/4, $0xc0800000
DATA actc<>+444(SB)/4, $0xc0800000
DATA actc<>+448(SB)/4, $0x3f000000
DATA actc<>+452(SB)/4, $0x3f000000
DATA actc<>+456(SB)/4, $0x3f000000
DATA actc<>+460(SB)/4, $0x3f000000
DATA actc<>+464(SB)/4, $0x3f000000
DATA actc<>+468(SB)/4, $0x3f000000
DATA actc<>+472(SB)/4, $0x3f000000
DATA actc<>+476(SB)/4, $0x3f000000
DATA actc<>+480(SB)/4, $0xaf95df0b
DATA actc<>+484(SB)/4, $0xaf95df0b
DATA actc<>+488(SB)/4, $0xaf95df0b
DATA actc<>+492(SB)/4, $0xaf95df0b
DATA actc<>+496(SB)/4, $0xaf95df0b
DATA actc<>+500(SB)/4, $0xaf95df0b
DATA actc<>+504(SB)/4, $0xaf95df0b
DATA actc<>+508(SB)/4, $0xaf95df0b
DATA actc<>+512(SB)/4, $0x32edffee
DATA actc<>+516(SB)/4, $0x32edffee
DATA actc<>+520(SB)/4, $0x32edffee
DATA actc<>+524(SB)/4, $0x32edffee
DATA actc<>+528(SB)/4, $0x32edffee
DATA actc<>+532(SB)/4, $0x32edffee
DATA actc<>+536(SB)/4, $0x32edffee
DATA actc<>+540(SB)/4, $0x32edffee
DATA actc<>+544(SB)/4, $0xb60cff51
DATA actc<>+548(SB)/4, $0xb60cff51
DATA actc<>+552(SB)/4, $0xb60cff51
DATA actc<>+556(SB)/4, $0xb60cff51
DATA actc<>+560(SB)/4, $0xb60cff51
DATA actc<>+564(SB)/4, $0xb60cff51
DATA actc<>+568(SB)/4, $0xb60cff51
DATA actc<>+572(SB)/4, $0xb60cff51
DATA actc<>+576(SB)/4, $0xb86ec2d2
DATA actc<>+580(SB)/4, $0xb86ec2d2
DATA actc<>+584(SB)/4, $0xb86ec2d2
DATA actc<>+588(SB)/4, $0xb86ec2d2
DATA actc<>+592(SB)/4, $0xb86ec2d2
DATA actc<>+596(SB)/4, $0xb86ec2d2
DATA actc<>+600(SB)/4, $0xb86ec2d2
DATA actc<>+604(SB)/4, $0xb86ec2d2
DATA actc<>+608(SB)/4, $0xba40ac63
DATA actc<>+612(SB)/4, $0xba40ac63
DATA actc<>+616(SB)/4, $0xba40ac63
DATA actc<>+620(SB)/4, $0xba40ac63
DATA actc<>+624(SB)/4, $0xba40ac63
DATA actc<>+628(SB)/4, $0xba40ac63
DATA actc<>+632(SB)/4, $0xba40ac63
DATA actc<>+636(SB)/4, $0xba40ac63
DATA actc<>+640(SB)/4, $0xbb41a1f6
DATA actc<>+644(SB)/4, $0xbb41a1f6
DATA actc<>+648(SB)/4, $0xbb41a1f6
DATA actc<>+652(SB)/4, $0xbb41a1f6
DATA actc<>+656(SB)/4, $0xbb41a1f6
DATA actc<>+660(SB)/4, $0xbb41a1f6
DATA actc<>+664(SB)/4, $0xbb41a1f6
DATA actc<>+668(SB)/4, $0xbb41a1f6
DATA actc<>+672(SB)/4, $0xbc83dbd4
DATA actc<>+676(SB)/4, $0xbc83dbd4
DATA actc<>+680(SB)/4, $0xbc83dbd4
DATA actc<>+684(SB)/4, $0xbc83dbd4
DATA actc<>+688(SB)/4, $0xbc83dbd4
DATA actc<>+692(SB)/4, $0xbc83dbd4
DATA actc<>+696(SB)/4, $0xbc83dbd4
DATA actc<>+700(SB)/4, $0xbc83dbd4
DATA actc<>+704(SB)/4, $0xb77460cd
DATA actc<>+708(SB)/4, $0xb77460cd
DATA actc<>+712(SB)/4, $0xb77460cd
DATA actc<>+716(SB)/4, $0xb77460cd
DATA actc<>+720(SB)/4, $0xb77460cd
DATA actc<>+724(SB)/4, $0xb77460cd
DATA actc<>+728(SB)/4, $0xb77460cd
DATA actc<>+732(SB)/4, $0xb77460cd
DATA actc<>+736(SB)/4, $0xb95fbd29
DATA actc<>+740(SB)/4, $0xb95fbd29
DATA actc<>+744(SB)/4, $0xb95fbd29
DATA actc<>+748(SB)/4, $0xb95fbd29
DATA actc<>+752(SB)/4, $0xb95fbd29
DATA actc<>+756(SB)/4, $0xb95fbd29
DATA actc<>+760(SB)/4, $0xb95fbd29
DATA actc<>+764(SB)/4, $0xb95fbd29
DATA actc<>+768(SB)/4, $0xbadc924e
DATA actc<>+772(SB)/4, $0xbadc924e
DATA actc<>+776(SB)/4, $0xbadc924e
DATA actc<>+780(SB)/4, $0xbadc924e
DATA actc<>+784(SB)/4, $0xbadc924e
DATA actc<>+788(SB)/4, $0xbadc924e
DATA actc<>+792(SB)/4, $0xbadc924e
DATA actc<>+796(SB)/4, $0xbadc924e
DATA actc<>+800(SB)/4, $0xbbf19bf8
DATA actc<>+804(SB)/4, $0xbbf19bf8
DATA actc<>+808(SB)/4, $0xbbf19bf8
DATA actc<>+812(SB)/4, $0xbbf19bf8
DATA actc<>+816(SB)/4, $0xbbf19bf8
DATA actc<>+820(SB)/4, $0xbbf19bf8
DATA actc<>+824(SB)/4, $0xbbf19bf8
DATA actc<>+828(SB)/4, $0xbbf19bf8
DATA actc<>+832(SB)/4, $0xbc69b6a7
DATA actc<>+836(SB)/4, $0xbc69b6a7
DATA actc<>+840(SB)/4, $0xbc69b6a7
DATA actc<>+844(SB)/4, $0xbc69b6a7
DATA actc<>+848(SB)/4, $0xbc69b6a7
DATA actc<>+852(SB)/4, $0xbc69b6a7
DATA actc<>+856(SB)/4, $0xbc69b6a7
DATA actc<>+860(SB)/4, $0xbc69b6a7
GLOBL actc<>(SB), RODATA|NOPTR, $864

// func maxAVX2(x *float32, n int) float32
// n a positive multiple of 8.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS (SI), Y0

maxloop:
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JNZ    maxloop
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET

// func scaleAVX2(x *float32, n int, s float32)
// n a multiple of 8.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1
	TESTQ        CX, CX
	JZ           scaledone

scaleloop:
	VMULPS  (SI), Y1, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     scaleloop

scaledone:
	VZEROUPPER
	RET

// func expSumAVX2(x *float32, n int, m, scale float32) float32
// x[i] = e^((x[i]-m)·scale) for i < n (a multiple of 8; the arguments of
// e^ ≤ 0), returning their sum. As exp32: 2^k · p(y), y = x - k·ln2.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y14
	VBROADCASTSS scale+20(FP), Y15
	VXORPS       Y13, Y13, Y13
	TESTQ        CX, CX
	JZ           expdone

exploop:
	VMOVUPS      (SI), Y0
	VSUBPS       Y14, Y0, Y0
	VMULPS       Y15, Y0, Y0
	VMAXPS       actc<>+0(SB), Y0, Y0
	VMULPS       actc<>+32(SB), Y0, Y1
	VROUNDPS     $0, Y1, Y1
	VFNMADD231PS actc<>+64(SB), Y1, Y0
	VFNMADD231PS actc<>+96(SB), Y1, Y0
	VMOVUPS      actc<>+128(SB), Y2
	VFMADD213PS  actc<>+160(SB), Y0, Y2
	VFMADD213PS  actc<>+192(SB), Y0, Y2
	VFMADD213PS  actc<>+224(SB), Y0, Y2
	VFMADD213PS  actc<>+256(SB), Y0, Y2
	VFMADD213PS  actc<>+288(SB), Y0, Y2
	VFMADD213PS  actc<>+320(SB), Y0, Y2
	VFMADD213PS  actc<>+320(SB), Y0, Y2
	VCVTPS2DQ    Y1, Y1
	VPSLLD       $23, Y1, Y1
	VPADDD       Y1, Y2, Y0
	VMOVUPS      Y0, (SI)
	VADDPS       Y0, Y13, Y13
	ADDQ         $32, SI
	SUBQ         $8, CX
	JNZ          exploop

expdone:
	VEXTRACTF128 $1, Y13, X1
	VADDPS       X1, X13, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func geluAVX2(x *float32, n int)
// x[i] = x[i]/2 · (1 + erf(x[i]/√2)) for i < n (a multiple of 8), erf
// the rational polynomial of erf32.
TEXT ·geluAVX2(SB), NOSPLIT, $0-16
	MOVQ  x+0(FP), SI
	MOVQ  n+8(FP), CX
	TESTQ CX, CX
	JZ    geludone

geluloop:
	VMOVUPS     (SI), Y0
	VMULPS      actc<>+352(SB), Y0, Y1
	VMINPS      actc<>+384(SB), Y1, Y1
	VMAXPS      actc<>+416(SB), Y1, Y1
	VMULPS      Y1, Y1, Y2
	VMOVUPS     actc<>+480(SB), Y3
	VFMADD213PS actc<>+512(SB), Y2, Y3
	VFMADD213PS actc<>+544(SB), Y2, Y3
	VFMADD213PS actc<>+576(SB), Y2, Y3
	VFMADD213PS actc<>+608(SB), Y2, Y3
	VFMADD213PS actc<>+640(SB), Y2, Y3
	VFMADD213PS actc<>+672(SB), Y2, Y3
	VMULPS      Y1, Y3, Y3
	VMOVUPS     actc<>+704(SB), Y4
	VFMADD213PS actc<>+736(SB), Y2, Y4
	VFMADD213PS actc<>+768(SB), Y2, Y4
	VFMADD213PS actc<>+800(SB), Y2, Y4
	VFMADD213PS actc<>+832(SB), Y2, Y4
	VDIVPS      Y4, Y3, Y3
	VMULPS      actc<>+448(SB), Y0, Y0
	VFMADD231PS Y3, Y0, Y0
	VMOVUPS     Y0, (SI)
	ADDQ        $32, SI
	SUBQ        $8, CX
	JNZ         geluloop

geludone:
	VZEROUPPER
	RET
