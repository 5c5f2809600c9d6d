//go:build !purego

#include "textflag.h"

// func maskBlocks(p *byte, n int, q, bs *uint64) (ctl bool)
// For each 64-byte block: four 16-byte compares with '"' and with '\\',
// their byte masks gathered into one 64-bit word each; and whether any
// byte is a control character: X6 keeps the bytewise minimum, and at the
// end max(min, 0x1f) == 0x1f says some byte is below 0x20.
TEXT ·maskBlocks(SB), NOSPLIT, $0-33
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ bs+24(FP), R8
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X0
	PUNPCKLQDQ X0, X0
	MOVQ $0x5c5c5c5c5c5c5c5c, AX
	MOVQ AX, X1
	PUNPCKLQDQ X1, X1
	MOVQ $0x1f1f1f1f1f1f1f1f, AX
	MOVQ AX, X4
	PUNPCKLQDQ X4, X4
	PCMPEQB X6, X6
	TESTQ CX, CX
	JZ done

loop:
	MOVOU 0(SI), X2
	PMINUB X2, X6
	MOVOU X2, X3
	PCMPEQB X0, X2
	PCMPEQB X1, X3
	PMOVMSKB X2, R9
	PMOVMSKB X3, R10
	MOVOU 16(SI), X2
	PMINUB X2, X6
	MOVOU X2, X3
	PCMPEQB X0, X2
	PCMPEQB X1, X3
	PMOVMSKB X2, R11
	PMOVMSKB X3, R12
	SHLQ $16, R11
	SHLQ $16, R12
	ORQ R11, R9
	ORQ R12, R10
	MOVOU 32(SI), X2
	PMINUB X2, X6
	MOVOU X2, X3
	PCMPEQB X0, X2
	PCMPEQB X1, X3
	PMOVMSKB X2, R11
	PMOVMSKB X3, R12
	SHLQ $32, R11
	SHLQ $32, R12
	ORQ R11, R9
	ORQ R12, R10
	MOVOU 48(SI), X2
	PMINUB X2, X6
	MOVOU X2, X3
	PCMPEQB X0, X2
	PCMPEQB X1, X3
	PMOVMSKB X2, R11
	PMOVMSKB X3, R12
	SHLQ $48, R11
	SHLQ $48, R12
	ORQ R11, R9
	ORQ R12, R10
	MOVQ R9, (DI)
	MOVQ R10, (R8)
	ADDQ $64, SI
	ADDQ $8, DI
	ADDQ $8, R8
	DECQ CX
	JNZ loop

done:
	PMAXUB X4, X6
	PCMPEQB X4, X6
	PMOVMSKB X6, AX
	TESTQ AX, AX
	SETNE ctl+32(FP)
	RET
