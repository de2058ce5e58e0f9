/* Reset entry for the functional build on qemu-system-riscv32 -M virt -smp 9 -bios none.
 * Every hart starts here. Hart 0 is the fabric controller, harts 1..8 are cluster cores 0..7.
 * Each hart gets its own stack below __stack_top; a0 = hart id for the C entry. */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    csrr t0, mhartid
    la sp, __stack_top
    li t1, COMPAT_STACK_BYTES
    mul t2, t0, t1
    sub sp, sp, t2
    la t3, compat_trap
    csrw mtvec, t3
    mv a0, t0
    call compat_hart_start
1:  wfi
    j 1b

/* compat_ctx_switch(save, load): cooperative switch for the sequential fallback (callee-saved regs, ra, sp). */
    .text
    .globl compat_ctx_switch
compat_ctx_switch:
    sw ra, 0(a0)
    sw sp, 4(a0)
    sw s0, 8(a0)
    sw s1, 12(a0)
    sw s2, 16(a0)
    sw s3, 20(a0)
    sw s4, 24(a0)
    sw s5, 28(a0)
    sw s6, 32(a0)
    sw s7, 36(a0)
    sw s8, 40(a0)
    sw s9, 44(a0)
    sw s10, 48(a0)
    sw s11, 52(a0)
    lw ra, 0(a1)
    lw sp, 4(a1)
    lw s0, 8(a1)
    lw s1, 12(a1)
    lw s2, 16(a1)
    lw s3, 20(a1)
    lw s4, 24(a1)
    lw s5, 28(a1)
    lw s6, 32(a1)
    lw s7, 36(a1)
    lw s8, 40(a1)
    lw s9, 44(a1)
    lw s10, 48(a1)
    lw s11, 52(a1)
    ret

    .align 2
compat_trap:
    csrr a0, mcause
    csrr a1, mepc
    csrr a2, mtval
    call compat_trap_report
2:  j 2b
