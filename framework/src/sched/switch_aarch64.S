/*
 * switch_aarch64.S — the goroutine context switch for AArch64 (AAPCS64).
 *
 * sli_switch(void **save_sp, void *load_sp): saves x19-x30 and d8-d15 on
 * the current stack, stores sp in *save_sp, loads load_sp, restores the
 * other context and returns into it.  A fresh stack (sli_stack_prepare)
 * returns into sli_go_entry with x19 = argument, x20 = function.
 */
	.text
	.globl	sli_switch
	.type	sli_switch, %function
	.p2align 4
sli_switch:
	sub	sp, sp, #160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	ret
	.size	sli_switch, .-sli_switch

	.globl	sli_go_entry
	.type	sli_go_entry, %function
	.p2align 4
sli_go_entry:
	mov	x0, x19
	blr	x20
	brk	#0
	.size	sli_go_entry, .-sli_go_entry

	.section .note.GNU-stack,"",%progbits
