/*
 * Entry, trap entry and privilege-switch code for the bare-metal guests.
 *
 * Hart 0 keeps the boot a0/a1 (hartid, device-tree address) in rt_boot_a0/a1,
 * sets up gp, the stack, mscratch/sscratch (trap stacks), mtvec and
 * stvec, clears .bss, opens PMP entry 0 to the whole address space (so S and
 * U can touch memory, as OpenSBI does), turns the FPU on (mstatus.FS=Initial)
 * and calls main(); main's return value becomes the exit status.  Every other
 * hart parks in WFI.
 *
 * Trap entry: M and S each swap sp with their scratch register (which holds
 * the top of a dedicated trap stack), save all 31 registers plus epc, cause,
 * tval and status into a struct rt_frame, and call rt_trap_m / rt_trap_s.
 * The C handler may edit the frame; epc, status and every register are
 * reloaded from it before mret/sret.  A trap taken while already inside a
 * handler is not supported.
 */
#include "rt_asm.h"

    .section .text.init, "ax"
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, rt_park
    mv      s0, a0                  /* boot arguments: hartid, device tree */
    mv      s1, a1
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, _stack_top
    la      t0, _mtrap_stack_top
    csrw    mscratch, t0
    la      t0, _strap_stack_top
    csrw    sscratch, t0
    la      t0, rt_trap_entry_m
    csrw    mtvec, t0
    la      t0, rt_trap_entry_s
    csrw    stvec, t0
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    la      t0, rt_boot_a0
    sd      s0, 0(t0)
    la      t0, rt_boot_a1
    sd      s1, 0(t0)
    /* PMP entry 0: NAPOT over everything, RWX, so S/U may access memory. */
    li      t0, -1
    srli    t0, t0, 10
    csrw    pmpaddr0, t0
    li      t0, 0x1f
    csrw    pmpcfg0, t0
    /* FPU on: mstatus.FS = Initial. */
    li      t0, (1 << 13)
    csrs    mstatus, t0
    csrwi   fcsr, 0
    call    main
    call    rt_exit
rt_park:
    /* mie.MSIE only (mstatus.MIE stays 0): an IPI ends the WFI without a
     * trap.  Hart 0 may then have put an entry and a stack for the other
     * harts in rt_secondary (a two-hart program: mig_throttle.c); until
     * then they sleep. */
    li      t0, 8
    csrs    mie, t0
1:  la      t0, rt_secondary
    ld      t1, 0(t0)
    bnez    t1, 2f
    wfi
    j       1b
2:  fence   r, rw
    ld      sp, 8(t0)
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    csrr    a0, mhartid
    jalr    t1
3:  wfi
    j       3b

/* Save x1..x31 into the frame at sp; the original sp is taken from \scratch. */
.macro SAVE_FRAME scratch, epc, cause, tval, status
    addi    sp, sp, -RT_FRAME_SIZE
    sd      x1, 1*8(sp)
    sd      x3, 3*8(sp)
    sd      x4, 4*8(sp)
    sd      x5, 5*8(sp)
    sd      x6, 6*8(sp)
    sd      x7, 7*8(sp)
    sd      x8, 8*8(sp)
    sd      x9, 9*8(sp)
    sd      x10, 10*8(sp)
    sd      x11, 11*8(sp)
    sd      x12, 12*8(sp)
    sd      x13, 13*8(sp)
    sd      x14, 14*8(sp)
    sd      x15, 15*8(sp)
    sd      x16, 16*8(sp)
    sd      x17, 17*8(sp)
    sd      x18, 18*8(sp)
    sd      x19, 19*8(sp)
    sd      x20, 20*8(sp)
    sd      x21, 21*8(sp)
    sd      x22, 22*8(sp)
    sd      x23, 23*8(sp)
    sd      x24, 24*8(sp)
    sd      x25, 25*8(sp)
    sd      x26, 26*8(sp)
    sd      x27, 27*8(sp)
    sd      x28, 28*8(sp)
    sd      x29, 29*8(sp)
    sd      x30, 30*8(sp)
    sd      x31, 31*8(sp)
    csrr    t0, \scratch
    sd      t0, 2*8(sp)
    sd      zero, 0(sp)
    csrr    t0, \epc
    sd      t0, RT_FRAME_EPC(sp)
    csrr    t0, \cause
    sd      t0, RT_FRAME_CAUSE(sp)
    csrr    t0, \tval
    sd      t0, RT_FRAME_TVAL(sp)
    csrr    t0, \status
    sd      t0, RT_FRAME_STATUS(sp)
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
.endm

.macro RESTORE_FRAME scratch, epc, status, ret
    ld      t0, RT_FRAME_EPC(sp)
    csrw    \epc, t0
    ld      t0, RT_FRAME_STATUS(sp)
    csrw    \status, t0
    addi    t0, sp, RT_FRAME_SIZE
    csrw    \scratch, t0
    ld      x1, 1*8(sp)
    ld      x3, 3*8(sp)
    ld      x4, 4*8(sp)
    ld      x5, 5*8(sp)
    ld      x6, 6*8(sp)
    ld      x7, 7*8(sp)
    ld      x8, 8*8(sp)
    ld      x9, 9*8(sp)
    ld      x10, 10*8(sp)
    ld      x11, 11*8(sp)
    ld      x12, 12*8(sp)
    ld      x13, 13*8(sp)
    ld      x14, 14*8(sp)
    ld      x15, 15*8(sp)
    ld      x16, 16*8(sp)
    ld      x17, 17*8(sp)
    ld      x18, 18*8(sp)
    ld      x19, 19*8(sp)
    ld      x20, 20*8(sp)
    ld      x21, 21*8(sp)
    ld      x22, 22*8(sp)
    ld      x23, 23*8(sp)
    ld      x24, 24*8(sp)
    ld      x25, 25*8(sp)
    ld      x26, 26*8(sp)
    ld      x27, 27*8(sp)
    ld      x28, 28*8(sp)
    ld      x29, 29*8(sp)
    ld      x30, 30*8(sp)
    ld      x31, 31*8(sp)
    ld      x2, 2*8(sp)
    \ret
.endm

    .text
    .balign 4
    .globl rt_trap_entry_m
rt_trap_entry_m:
    csrrw   sp, mscratch, sp
    SAVE_FRAME mscratch, mepc, mcause, mtval, mstatus
    mv      a0, sp
    call    rt_trap_m
    RESTORE_FRAME mscratch, mepc, mstatus, mret

    .balign 4
    .globl rt_trap_entry_s
rt_trap_entry_s:
    csrrw   sp, sscratch, sp
    SAVE_FRAME sscratch, sepc, scause, stval, sstatus
    mv      a0, sp
    call    rt_trap_s
    RESTORE_FRAME sscratch, sepc, sstatus, sret

/*
 * long rt_run_in_mode(int mode, long (*fn)(long), long arg)
 * Saves the callee-saved state in rt_mode_ctx, then mret's into fn(arg) at
 * privilege `mode` (0 = U, 1 = S); S keeps the current stack, U gets the
 * stack in the user region.  fn returns into
 * rt_mode_return, whose ecall (a7 = RT_ECALL_RETURN) makes rt_trap_m restore
 * that state and resume here with fn's return value.
 */
    .globl rt_run_in_mode
rt_run_in_mode:
    la      t0, rt_mode_ctx
    sd      ra, 0*8(t0)
    sd      sp, 1*8(t0)
    sd      s0, 2*8(t0)
    sd      s1, 3*8(t0)
    sd      s2, 4*8(t0)
    sd      s3, 5*8(t0)
    sd      s4, 6*8(t0)
    sd      s5, 7*8(t0)
    sd      s6, 8*8(t0)
    sd      s7, 9*8(t0)
    sd      s8, 10*8(t0)
    sd      s9, 11*8(t0)
    sd      s10, 12*8(t0)
    sd      s11, 13*8(t0)
    csrr    t1, mstatus
    sd      t1, 14*8(t0)
    li      t1, 1
    sd      t1, 15*8(t0)            /* active */
    /* Fresh trap stacks for the lower mode. */
    la      t1, _strap_stack_top
    csrw    sscratch, t1
    /* mstatus.MPP = mode */
    li      t1, (3 << 11)
    csrc    mstatus, t1
    andi    a0, a0, 3
    slli    a0, a0, 11
    csrs    mstatus, a0
    csrw    mepc, a1
    la      ra, rt_mode_return_s
    bnez    a0, 1f
    la      sp, _ustack_top         /* U runs on the user-region stack */
    la      ra, rt_mode_return_u    /* and returns through user-region code */
1:  mv      a0, a2
    mret

/* The return trampolines: one S may execute, one in the (U=1) user region. */
    .globl rt_mode_return_s
rt_mode_return_s:
    li      a7, RT_ECALL_RETURN
    ecall
1:  j       1b

    .section .user_text, "ax"
    .globl rt_mode_return_u
rt_mode_return_u:
    li      a7, RT_ECALL_RETURN
    ecall
1:  j       1b
