/*
 * switch_x86_64.S — the goroutine context switch for x86-64 (System V).
 *
 * sli_switch(void **save_sp, void *load_sp) pushes the callee-saved
 * registers on the current stack, stores the stack pointer in *save_sp,
 * loads load_sp and pops the other context's registers.  No signal mask
 * is touched, so a switch costs no system call.
 *
 * A fresh stack is laid out by sli_stack_prepare() so that its first
 * switch "returns" into sli_go_entry with r12 = argument, r13 = function.
 */
	.text
	.globl	sli_switch
	.type	sli_switch, @function
	.p2align 4
sli_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	sli_switch, .-sli_switch

	.globl	sli_go_entry
	.type	sli_go_entry, @function
	.p2align 4
sli_go_entry:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	sli_go_entry, .-sli_go_entry

	.section .note.GNU-stack,"",@progbits
