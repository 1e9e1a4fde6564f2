/*
 * bench/cpu runtime: M-mode entry, trap vector and the S-mode trampoline.
 *
 * _start runs on hart 0 (others park), enables the FPU, installs the trap
 * vector, clears .bss and calls bench_start() in rt.c. The trap vector
 * handles exactly three things and treats anything else as fatal:
 *   - the machine timer interrupt (bench_timer_*): re-arm mtimecmp, count the
 *     tick and flush the TLB as a context switch in a real kernel would;
 *   - ecall from S-mode: the end of bench_run_smode();
 *   - everything else: bench_trap_fatal() prints the cause and fails.
 * mscratch always holds the top of the trap stack while no trap is active.
 */

#define CLINT_MTIMECMP 0x02004000
#define CLINT_MTIME    0x0200bff8

    .section .text.init, "ax", @progbits
    .globl _start
_start:
    csrr    t0, mhartid
    bnez    t0, .Lpark
    la      sp, __stack_top
    la      t0, __trap_stack_top
    csrw    mscratch, t0
    la      t0, bench_trap_entry
    csrw    mtvec, t0
    csrw    mie, zero
    li      t0, 0x6000          /* mstatus.FS = dirty: FPU on */
    csrs    mstatus, t0
    csrw    fcsr, zero
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:  call    bench_start
.Lpark:
    wfi
    j       .Lpark

    .text
    .align  4
    .globl  bench_trap_entry
bench_trap_entry:
    csrrw   sp, mscratch, sp
    addi    sp, sp, -64
    sd      t0, 0(sp)
    sd      t1, 8(sp)
    sd      t2, 16(sp)
    csrr    t0, mcause
    bgez    t0, .Lexception
    slli    t0, t0, 1
    srli    t0, t0, 1
    li      t1, 7               /* machine timer interrupt */
    bne     t0, t1, .Lfatal
    li      t0, CLINT_MTIME
    ld      t1, 0(t0)
    la      t0, bench_timer_interval
    ld      t2, 0(t0)
    add     t1, t1, t2
    li      t0, CLINT_MTIMECMP
    sd      t1, 0(t0)
    la      t0, bench_timer_count
    ld      t1, 0(t0)
    addi    t1, t1, 1
    sd      t1, 0(t0)
    sfence.vma
    ld      t0, 0(sp)
    ld      t1, 8(sp)
    ld      t2, 16(sp)
    addi    sp, sp, 64
    csrrw   sp, mscratch, sp
    mret

.Lexception:
    li      t1, 9               /* ecall from S-mode */
    bne     t0, t1, .Lfatal
    /* Back to the M-mode caller of bench_run_smode with a0 as result. */
    la      t0, __trap_stack_top
    csrw    mscratch, t0
    la      t0, bench_smode_saved_sp
    ld      sp, 0(t0)
    ld      ra, 0(sp)
    ld      s0, 8(sp)
    ld      s1, 16(sp)
    ld      s2, 24(sp)
    ld      s3, 32(sp)
    ld      s4, 40(sp)
    ld      s5, 48(sp)
    ld      s6, 56(sp)
    ld      s7, 64(sp)
    ld      s8, 72(sp)
    ld      s9, 80(sp)
    ld      s10, 88(sp)
    ld      s11, 96(sp)
    ld      t0, 104(sp)         /* the caller's mstatus.MIE */
    andi    t0, t0, 8
    csrs    mstatus, t0
    addi    sp, sp, 112
    ret

.Lfatal:
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    bench_trap_fatal
1:  j       1b

/*
 * long bench_run_smode(long (*fn)(void *), void *arg)
 * Runs fn(arg) in S-mode on the current stack and returns its result in
 * M-mode. Translation follows whatever satp the caller set up.
 */
    .globl  bench_run_smode
bench_run_smode:
    addi    sp, sp, -112
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    sd      s1, 16(sp)
    sd      s2, 24(sp)
    sd      s3, 32(sp)
    sd      s4, 40(sp)
    sd      s5, 48(sp)
    sd      s6, 56(sp)
    sd      s7, 64(sp)
    sd      s8, 72(sp)
    sd      s9, 80(sp)
    sd      s10, 88(sp)
    sd      s11, 96(sp)
    csrrci  t0, mstatus, 8      /* MIE off: a tick now would clobber mepc */
    sd      t0, 104(sp)
    la      t0, bench_smode_saved_sp
    sd      sp, 0(t0)
    li      t0, 0x1800          /* mstatus.MPP = S */
    csrc    mstatus, t0
    li      t0, 0x0800
    csrs    mstatus, t0
    la      t0, .Lsmode_entry
    csrw    mepc, t0
    mret
.Lsmode_entry:
    mv      t0, a0
    mv      a0, a1
    jalr    t0
    ecall

    .section .bss
    .align  3
    .globl  bench_smode_saved_sp
bench_smode_saved_sp:
    .dword  0
