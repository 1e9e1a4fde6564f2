/*
 * Entry of the QEMU vector recorder: M-mode at the ELF entry, no firmware.
 * Set a stack, enable the FPU (mstatus.FS = Initial), run main, then ask
 * QEMU virt's sifive_test device to power off.
 */
    .section .text.init
    .globl _start
_start:
    la      sp, _stack_top
    li      t0, 0x2000          /* mstatus.FS = 01 */
    csrs    mstatus, t0
    csrwi   fcsr, 0
    call    main
    li      t0, 0x100000
    li      t1, 0x5555          /* FINISHER_PASS */
    sw      t1, 0(t0)
1:  wfi
    j       1b
