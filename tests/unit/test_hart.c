/*
 * Hart unit tests: integer ISA, compressed decode, traps and delegation,
 * xRET, interrupts and WFI, CSR rules, LR/SC and AMOs, F/D glue, the
 * "jumped into nowhere" guard.  Paging, PMP, dirty tracking and
 * self-modifying code are in test_hart_mmu.c.
 */
#include "hart_test.h"

static uint64_t X(struct ht *t, unsigned r)
{
    return rv_hart_get_x(t->h, r);
}

static void test_alu(void)
{
    struct ht t;

    ht_init(&t);
    li(&t, 1, 0x123456789abcdef0ull);
    li(&t, 2, (uint64_t)-7);
    emit(&t, ADD(3, 1, 2));
    emit(&t, SUB(4, 2, 1));
    emit(&t, SRA(5, 2, 2)); /* shift by 0x39 (low 6 bits of -7) */
    emit(&t, SLT(6, 2, 1));
    emit(&t, SLTU(7, 2, 1));
    emit(&t, ADDI(0, 1, 5)); /* write to x0 is dropped */
    emit(&t, ADD(8, 0, 0));
    emit(&t, LUI(9, 0xfffff));
    uint64_t auipc_at = t.pc;
    emit(&t, AUIPC(10, 1));
    emit(&t, ADDIW(11, 1, 0));
    emit(&t, MUL(12, 1, 2));
    emit(&t, MULH(13, 2, 2));
    emit(&t, DIV(14, 1, 0));  /* /0 -> -1 */
    emit(&t, DIVU(15, 1, 0)); /* /0 -> all ones */
    emit(&t, REM(16, 1, 0));  /* %0 -> dividend */
    li(&t, 17, 1ull << 63);
    li(&t, 18, (uint64_t)-1);
    emit(&t, DIV(19, 17, 18)); /* overflow -> dividend */
    emit(&t, REM(20, 17, 18)); /* overflow -> 0 */
    emit(&t, DIVW(21, 2, 0));
    emit(&t, EBREAK);
    CHECK_EQ(ht_run(&t), RV_EXIT_BUDGET, "run ends spinning in the trap handler");
    CHECK_EQ(rv_hart_get_pc(t.h), HT_TRAP, "at the trap vector");
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "ebreak cause");
    CHECK_EQ(t.h->mtval, 0, "ebreak tval (QEMU 7.2: 0)");
    CHECK_EQ(X(&t, 3), 0x123456789abcdef0ull - 7, "add");
    CHECK_EQ(X(&t, 4), (uint64_t)-7 - 0x123456789abcdef0ull, "sub");
    CHECK_EQ(X(&t, 5), (uint64_t)((int64_t)-7 >> ((uint64_t)-7 & 63)), "sra");
    CHECK_EQ(X(&t, 6), 1, "slt");
    CHECK_EQ(X(&t, 7), 0, "sltu");
    CHECK_EQ(X(&t, 0), 0, "x0 stays zero");
    CHECK_EQ(X(&t, 8), 0, "reads of x0");
    CHECK_EQ(X(&t, 9), 0xfffffffffffff000ull, "lui sign-extends");
    CHECK_EQ(X(&t, 10), auipc_at + 0x1000, "auipc is pc-relative");
    CHECK_EQ(X(&t, 11), 0xffffffff9abcdef0ull, "addiw sign-extends");
    CHECK_EQ(X(&t, 12), 0x123456789abcdef0ull * (uint64_t)-7, "mul");
    CHECK_EQ(X(&t, 13), 0, "mulh(-7,-7)");
    CHECK_EQ(X(&t, 14), UINT64_MAX, "div by zero");
    CHECK_EQ(X(&t, 15), UINT64_MAX, "divu by zero");
    CHECK_EQ(X(&t, 16), 0x123456789abcdef0ull, "rem by zero");
    CHECK_EQ(X(&t, 19), 1ull << 63, "div overflow");
    CHECK_EQ(X(&t, 20), 0, "rem overflow");
    CHECK_EQ(X(&t, 21), UINT64_MAX, "divw by zero");
    CHECK(rv_hart_instret(t.h) > 20, "instret counts retired instructions");
    ht_fini(&t);
}

static void test_auipc_branches(void)
{
    struct ht t;
    uint64_t at;

    ht_init(&t);
    at = t.pc;
    emit(&t, AUIPC(1, 2));   /* x1 = at + 0x2000 */
    emit(&t, ADDI(2, 0, 3)); /* loop counter */
    emit(&t, ADDI(3, 0, 0));
    emit(&t, ADDI(3, 3, 1)); /* loop: */
    emit(&t, ADDI(2, 2, -1));
    emit(&t, BNE(2, 0, -8));
    emit(&t, JAL(4, 8)); /* skip one */
    emit(&t, ADDI(3, 0, 99));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 1), at + 0x2000, "auipc");
    CHECK_EQ(X(&t, 3), 3, "backward branch loop");
    CHECK_EQ(X(&t, 4), at + 7 * 4, "jal link");
    CHECK_EQ(t.h->mepc, at + 8 * 4, "jal skipped an instruction");
    ht_fini(&t);
}

static void test_loads_stores(void)
{
    struct ht t;
    uint64_t buf = HT_RAM + 0x4000;

    ht_init(&t);
    ht_put64(&t, buf, 0x8877665544332211ull);
    ht_put64(&t, buf + 8, 0x00ffeeddccbbaa99ull);
    li(&t, 1, buf);
    emit(&t, LB(2, 1, 7));
    emit(&t, LBU(3, 1, 7));
    emit(&t, LH(4, 1, 6));
    emit(&t, LW(5, 1, 4));
    emit(&t, LWU(6, 1, 4));
    emit(&t, LD(7, 1, 1)); /* misaligned: QEMU 7.2 performs it */
    li(&t, 8, 0x0102030405060708ull);
    emit(&t, SD(8, 1, 13)); /* misaligned store */
    emit(&t, LD(9, 1, 13));
    li(&t, 10, buf + 4096 - 3); /* straddles a page */
    emit(&t, SW(8, 10, 0));
    emit(&t, LW(11, 10, 0));
    emit(&t, EBREAK);
    CHECK_EQ(ht_run(&t), RV_EXIT_BUDGET, "ran");
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "no trap before ebreak");
    CHECK_EQ(X(&t, 2), 0xffffffffffffff88ull, "lb sign-extends");
    CHECK_EQ(X(&t, 3), 0x88, "lbu");
    CHECK_EQ(X(&t, 4), 0xffffffffffff8877ull, "lh");
    CHECK_EQ(X(&t, 5), 0xffffffff88776655ull, "lw");
    CHECK_EQ(X(&t, 6), 0x88776655ull, "lwu");
    CHECK_EQ(X(&t, 7), 0x9988776655443322ull, "misaligned ld");
    CHECK_EQ(X(&t, 9), 0x0102030405060708ull, "misaligned sd/ld round trip");
    CHECK_EQ(X(&t, 11), 0x05060708ull, "page-straddling sw/lw");
    ht_fini(&t);
}

static void test_mmio_and_faults(void)
{
    struct ht t;

    ht_init(&t);
    li(&t, 1, HT_MMIO);
    li(&t, 2, 0xabcd);
    emit(&t, SH(2, 1, 8));
    emit(&t, ADDI(0, 0, 0));
    emit(&t, LD(3, 1, 8));
    li(&t, 4, 0x20000000); /* nothing there */
    emit(&t, LW(5, 4, 0));
    ht_run(&t);
    CHECK_EQ(t.mmio_writes, 1, "mmio write reached the bus");
    CHECK_EQ(X(&t, 3), 0xabcd, "mmio read");
    CHECK_EQ(t.h->mcause, RV_EXC_LOAD_ACCESS, "load from a hole: access fault");
    CHECK_EQ(t.h->mtval, 0x20000000, "access fault tval = address");
    ht_fini(&t);

    ht_init(&t);
    li(&t, 4, 0x20000000);
    emit(&t, SD(4, 4, 8));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_STORE_ACCESS, "store to a hole: store access fault");
    CHECK_EQ(t.h->mtval, 0x20000008, "store access fault tval");
    ht_fini(&t);
}

static void test_illegal(void)
{
    struct ht t;
    uint64_t at;

    ht_init(&t);
    at = t.pc;
    emit(&t, 0xffffffffu);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "0xffffffff is illegal");
    CHECK_EQ(t.h->mtval, 0xffffffffu, "illegal tval = instruction bits (QEMU 7.2)");
    CHECK_EQ(t.h->mepc, at, "mepc = faulting pc");
    ht_fini(&t);

    ht_init(&t);
    emit16(&t, 0x0000);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "c.0000 is illegal");
    CHECK_EQ(t.h->mtval, 0, "c.0000 tval");
    ht_fini(&t);

    ht_init(&t);
    emit16(&t, 0x4002); /* c.lwsp x0: reserved */
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "c.lwsp rd=0 is reserved");
    CHECK_EQ(t.h->mtval, 0x4002, "16-bit tval");
    ht_fini(&t);

    ht_init(&t);
    emit(&t, CSRW(C_MVENDORID, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "write to read-only CSR");
    CHECK_EQ(t.h->mtval, CSRW(C_MVENDORID, 0), "tval of CSR fault");
    ht_fini(&t);

    ht_init(&t);
    emit(&t, CSRR(1, 0x7ff));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "unknown CSR");
    ht_fini(&t);
}

static void test_compressed(void)
{
    struct ht t;

    ht_init(&t);
    li(&t, 2, HT_RAM + 0x8000); /* sp */
    emit16(&t, 0x4285);         /* c.li x5, 1 */
    emit16(&t, 0x0295);         /* c.addi x5, 5 */
    emit16(&t, 0x832a);         /* c.mv x6, x10 */
    emit16(&t, 0x9316);         /* c.add x6, x5 */
    emit16(&t, 0xe416);         /* c.sdsp x5, 8(sp) */
    emit16(&t, 0x63a2);         /* c.ld x7, 8(sp)? -> c.ldsp x7, 8(sp) */
    emit16(&t, 0x0405);         /* c.addi x8, 1 */
    emit16(&t, 0x8c05);         /* c.sub x8, x9 */
    emit16(&t, 0x1101);         /* c.addi sp, -32 */
    emit16(&t, 0x6105);         /* c.addi16sp sp, 32 */
    emit16(&t, 0x0286);         /* c.slli x5, 1 */
    emit16(&t, 0x2285);         /* c.addiw x5, 1 */
    emit16(&t, 0xa011);         /* c.j +4 */
    emit16(&t, 0x4285);         /* skipped: c.li x5, 1 */
    emit16(&t, 0x9002);         /* c.ebreak */
    rv_hart_set_x(t.h, 10, 100);
    rv_hart_set_x(t.h, 9, 3);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "c.ebreak");
    CHECK_EQ(X(&t, 5), 13, "c.li/c.addi/c.slli/c.addiw");
    CHECK_EQ(X(&t, 6), 106, "c.mv/c.add");
    CHECK_EQ(X(&t, 7), 6, "c.sdsp/c.ldsp");
    CHECK_EQ(X(&t, 8), (uint64_t)-2, "c.addi/c.sub");
    CHECK_EQ(X(&t, 2), HT_RAM + 0x8000, "c.addi16sp");
    ht_fini(&t);
}

static void test_ecall_delegation(void)
{
    struct ht t;
    uint64_t at;

    /* ecall from M */
    ht_init(&t);
    emit(&t, ECALL);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ECALL_M, "ecall from M");
    CHECK_EQ(rv_hart_get_priv(t.h), RV_PRV_M, "trap to M");
    ht_fini(&t);

    /* mret to U without any PMP rule: QEMU 7.2 makes MRET illegal */
    ht_init(&t);
    ht_enter(&t, RV_PRV_U);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "mret to U with no PMP rule is illegal (QEMU)");
    ht_fini(&t);

    /* ecall from U delegated to S */
    ht_init(&t);
    ht_pmp_open(&t);
    t.h->medeleg = 1u << RV_EXC_ECALL_U;
    t.h->stvec = HT_TRAP + 0x100;
    ht_put32(&t, HT_TRAP + 0x100, EBREAK); /* S handler: ebreak -> M */
    ht_enter(&t, RV_PRV_U);
    at = t.pc;
    emit(&t, ECALL);
    ht_run(&t);
    CHECK_EQ(t.h->scause, RV_EXC_ECALL_U, "ecall from U delegated: scause");
    CHECK_EQ(t.h->sepc, at, "sepc");
    CHECK_EQ((t.h->mstatus & MSTATUS_SPP) != 0, 0, "SPP = U");
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "S handler ran and trapped to M");
    CHECK_EQ((t.h->mstatus & MSTATUS_MPP) >> 11, RV_PRV_S, "MPP = S");
    ht_fini(&t);

    /* ecall from S, not delegated */
    ht_init(&t);
    ht_pmp_open(&t);
    ht_enter(&t, RV_PRV_S);
    emit(&t, ECALL);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ECALL_S, "ecall from S");
    CHECK_EQ((t.h->mstatus & MSTATUS_MPP) >> 11, RV_PRV_S, "MPP = S");
    ht_fini(&t);

    /* mret from S is illegal, sret with TSR is illegal */
    ht_init(&t);
    ht_pmp_open(&t);
    ht_enter(&t, RV_PRV_S);
    emit(&t, MRET);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "mret in S is illegal");
    CHECK_EQ(t.h->mtval, MRET, "tval = mret bits");
    ht_fini(&t);

    ht_init(&t);
    ht_pmp_open(&t);
    t.h->mstatus |= MSTATUS_TSR;
    ht_enter(&t, RV_PRV_S);
    emit(&t, SRET);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "sret with TSR=1 is illegal");
    ht_fini(&t);
}

static void test_xret_state(void)
{
    struct ht t;

    ht_init(&t);
    ht_pmp_open(&t);
    t.h->mstatus |= MSTATUS_MPIE | MSTATUS_MPRV;
    ht_enter(&t, RV_PRV_S);
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "reached S");
    CHECK_EQ((t.h->mstatus & MSTATUS_MPRV), 0, "mret to S clears MPRV");
    CHECK_EQ((t.h->mstatus & MSTATUS_MIE), 0, "trap clears MIE");
    CHECK((t.h->mstatus & MSTATUS_MPIE) != 0, "trap saved MIE=1 (set by mret) in MPIE");
    ht_fini(&t);
}

static void test_interrupts(void)
{
    struct ht t;
    uint64_t at;

    /* MTI taken, vectored */
    ht_init(&t);
    t.h->mtvec = HT_TRAP | 1;
    ht_put32(&t, HT_TRAP + 4 * RV_IRQ_MTI, JAL(0, 0));
    li(&t, 1, 1u << RV_IRQ_MTI);
    emit(&t, CSRW(C_MIE, 1));
    emit(&t, CSRRSI(0, C_MSTATUS, 8)); /* MIE */
    at = t.pc;
    for (int i = 0; i < 8; i++)
        emit(&t, ADDI(2, 2, 1));
    emit(&t, EBREAK);
    rv_hart_set_irq(t.h, RV_IRQ_MTI, true);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_CAUSE_INTR | RV_IRQ_MTI, "timer interrupt cause");
    CHECK_EQ(t.h->mepc, at, "interrupt taken right after the CSR write enabled it");
    CHECK_EQ(rv_hart_get_pc(t.h), HT_TRAP + 4 * RV_IRQ_MTI, "vectored mtvec");
    CHECK_EQ(t.h->mtval, 0, "interrupt tval");
    ht_fini(&t);

    /* priority: MEI before MTI before SEI; delegated SSI goes to S */
    ht_init(&t);
    t.h->mie = 0xaaa;
    rv_hart_set_irq(t.h, RV_IRQ_MTI, true);
    rv_hart_set_irq(t.h, RV_IRQ_MEI, true);
    rv_hart_set_irq(t.h, RV_IRQ_SEI, true);
    CHECK_EQ(rv_pending_irq(t.h), -1, "no interrupt while M and MIE=0");
    t.h->mstatus |= MSTATUS_MIE;
    CHECK_EQ(rv_pending_irq(t.h), RV_IRQ_MEI, "MEI first");
    rv_hart_set_irq(t.h, RV_IRQ_MEI, false);
    CHECK_EQ(rv_pending_irq(t.h), RV_IRQ_MTI, "then MTI");
    rv_hart_set_irq(t.h, RV_IRQ_MTI, false);
    CHECK_EQ(rv_pending_irq(t.h), RV_IRQ_SEI, "then SEI (not delegated)");
    t.h->mideleg = 1u << RV_IRQ_SEI;
    CHECK_EQ(rv_pending_irq(t.h), -1, "delegated SEI not taken in M");
    rv_set_priv(t.h, RV_PRV_U);
    CHECK_EQ(rv_pending_irq(t.h), RV_IRQ_SEI, "delegated SEI taken in U even with SIE=0");
    rv_hart_set_irq(t.h, RV_IRQ_SEI, false);
    t.h->mip_sw = 1u << RV_IRQ_SSI;
    t.h->mideleg = 0x222;
    rv_set_priv(t.h, RV_PRV_S);
    CHECK_EQ(rv_pending_irq(t.h), -1, "SSI in S needs SIE");
    t.h->mstatus |= MSTATUS_SIE;
    CHECK_EQ(rv_pending_irq(t.h), RV_IRQ_SSI, "SSI in S with SIE");
    ht_fini(&t);
}

static void test_wfi(void)
{
    struct ht t;
    uint64_t at;

    ht_init(&t);
    li(&t, 1, 1u << RV_IRQ_MTI);
    emit(&t, CSRW(C_MIE, 1));
    emit(&t, WFI);
    at = t.pc;
    emit(&t, ADDI(2, 0, 7));
    emit(&t, EBREAK);
    CHECK_EQ(rv_hart_run(t.h, 1000), RV_EXIT_WFI, "WFI with nothing pending exits");
    CHECK_EQ(rv_hart_get_pc(t.h), at, "pc after WFI");
    CHECK(!rv_hart_irq_pending(t.h), "nothing pending");
    rv_hart_set_irq(t.h, RV_IRQ_MTI, true);
    CHECK(rv_hart_irq_pending(t.h), "pending with MIE=0 still wakes WFI");
    rv_hart_set_irq(t.h, RV_IRQ_MTI, false);
    CHECK_EQ(rv_hart_run(t.h, 1000), RV_EXIT_BUDGET, "continues after WFI (MIE=0: no trap)");
    CHECK_EQ(X(&t, 2), 7, "code after WFI ran");
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "then the ebreak");
    ht_fini(&t);

    /* WFI with an enabled interrupt already pending but masked (MIE=0)
     * completes at once, and still ends the slice so the board can run the
     * other harts (a hart polling in a WFI loop does not eat its slice). */
    ht_init(&t);
    li(&t, 1, 1u << RV_IRQ_MSI);
    emit(&t, CSRW(C_MIE, 1));
    emit(&t, WFI);
    at = t.pc;
    emit(&t, ADDI(2, 0, 9));
    emit(&t, EBREAK);
    rv_hart_set_irq(t.h, RV_IRQ_MSI, true);
    CHECK_EQ(rv_hart_run(t.h, 1000), RV_EXIT_WFI, "WFI with a masked pending interrupt yields");
    CHECK_EQ(rv_hart_get_pc(t.h), at, "pc after WFI");
    CHECK(rv_hart_irq_pending(t.h), "and the board sees it runnable at once");
    CHECK_EQ(rv_hart_run(t.h, 1000), RV_EXIT_BUDGET, "continues after WFI (no trap: MIE=0)");
    CHECK_EQ(X(&t, 2), 9, "code after WFI ran");
    ht_fini(&t);

    ht_init(&t);
    ht_pmp_open(&t);
    t.h->mstatus |= MSTATUS_TW;
    ht_enter(&t, RV_PRV_S);
    emit(&t, WFI);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "WFI in S with TW=1 is illegal");
    CHECK_EQ(t.h->mtval, WFI, "WFI tval");
    ht_fini(&t);

    ht_init(&t);
    ht_pmp_open(&t);
    ht_enter(&t, RV_PRV_U);
    emit(&t, WFI);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "WFI in U is illegal (QEMU 7.2)");
    ht_fini(&t);

    ht_init(&t);
    emit(&t, JAL(0, 0)); /* spin */
    CHECK_EQ(rv_hart_run(t.h, 5000), RV_EXIT_BUDGET, "budget exit");
    rv_hart_request_exit(t.h);
    CHECK_EQ(rv_hart_run(t.h, 5000), RV_EXIT_REQUEST, "request exit");
    ht_fini(&t);
}

static void test_csrs(void)
{
    struct ht t;

    ht_init(&t);
    li(&t, 1, -1);
    emit(&t, CSRW(C_MSTATUS, 1));
    emit(&t, CSRR(2, C_MSTATUS));
    emit(&t, CSRR(8, C_SSTATUS));
    emit(&t, CSRW(C_MSTATUS, 0));
    emit(&t, CSRW(C_MIE, 1));
    emit(&t, CSRR(3, C_MIE));
    emit(&t, CSRW(C_MIP, 1));
    emit(&t, CSRR(4, C_MIP));
    emit(&t, CSRW(C_MEDELEG, 1));
    emit(&t, CSRR(5, C_MEDELEG));
    emit(&t, CSRW(C_MIDELEG, 1));
    emit(&t, CSRR(6, C_MIDELEG));
    emit(&t, CSRW(C_MISA, 0));
    emit(&t, CSRR(7, C_MISA));
    emit(&t, CSRR(9, C_SIE));
    li(&t, 10, 0xa000000000000000ull | 0x123);
    emit(&t, CSRW(C_SATP, 10));
    li(&t, 10, 0xf000000000000000ull); /* unsupported mode: ignored */
    emit(&t, CSRW(C_SATP, 10));
    emit(&t, CSRR(11, C_SATP));
    emit(&t, CSRW(C_MIP, 0));
    emit(&t, CSRR(12, C_MHARTID));
    emit(&t, CSRR(13, C_TIME));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "no trap");
    CHECK_EQ(X(&t, 2), 0x800000cb007e7faaull, "mstatus after writing ones (QEMU 7.2, h=false)");
    CHECK_EQ(X(&t, 3), 0x2eee, "mie mask (QEMU 7.2)");
    CHECK_EQ(X(&t, 4), 0x2666, "mip: SSIP/STIP/SEIP (+VS*, LCOFI as QEMU) writable");
    CHECK_EQ(X(&t, 5), 0xf0bfff, "medeleg mask (QEMU 7.2)");
    CHECK_EQ(X(&t, 6), 0x2666, "mideleg mask (QEMU 7.2)");
    CHECK_EQ(X(&t, 7), 0x800000000014112dull, "misa RV64IMAFDCSU, writes ignored");
    CHECK_EQ(X(&t, 8), 0x80000003000c6722ull, "sstatus view (UXL reads back 3 as in QEMU)");
    CHECK_EQ(X(&t, 9), 0x2222, "sie = mie & mideleg & S bits");
    CHECK_EQ(X(&t, 11), 0xa000000000000123ull, "satp: invalid mode write ignored");
    CHECK_EQ(X(&t, 12), 0, "mhartid");
    CHECK(X(&t, 13) != 0, "time CSR reads the clock");
    ht_fini(&t);

    /* counter access control from S */
    ht_init(&t);
    ht_pmp_open(&t);
    ht_enter(&t, RV_PRV_S);
    emit(&t, CSRR(1, C_TIME));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "rdtime in S with mcounteren=0");
    ht_fini(&t);

    ht_init(&t);
    ht_pmp_open(&t);
    t.h->mcounteren = 7;
    ht_enter(&t, RV_PRV_S);
    emit(&t, CSRR(1, C_TIME));
    emit(&t, CSRR(2, C_INSTRET));
    emit(&t, CSRR(3, C_MSTATUS));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "S reading an M CSR");
    CHECK_EQ(t.h->mtval, CSRR(3, C_MSTATUS), "tval");
    CHECK(X(&t, 2) > 0, "instret visible with mcounteren.IR");
    ht_fini(&t);

    /* minstret write replaces the increment */
    ht_init(&t);
    li(&t, 1, 1000);
    emit(&t, CSRW(C_MINSTRET, 1));
    emit(&t, CSRR(2, C_MINSTRET));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 2), 1000, "minstret write takes the place of its increment");
    ht_fini(&t);

    /* PMP CSR lock semantics */
    ht_init(&t);
    li(&t, 1, 0x9f);       /* locked NAPOT RWX */
    li(&t, 2, 0x1fffffff); /* covers 0 .. 2^32-1 */
    emit(&t, CSRW(C_PMPADDR0, 2));
    emit(&t, CSRW(C_PMPCFG0, 1));
    emit(&t, CSRW(C_PMPCFG0, 0));  /* ignored: locked */
    emit(&t, CSRW(C_PMPADDR0, 0)); /* ignored: locked */
    emit(&t, CSRR(3, C_PMPCFG0));
    emit(&t, CSRR(4, C_PMPADDR0));
    emit(&t, CSRR(5, 0x3a1)); /* pmpcfg1 does not exist on RV64 */
    ht_run(&t);
    CHECK_EQ(X(&t, 3), 0x9f, "locked pmpcfg ignores writes");
    CHECK_EQ(X(&t, 4), 0x1fffffff, "locked pmpaddr ignores writes");
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "pmpcfg1 illegal on RV64");
    ht_fini(&t);
}

static void test_atomics(void)
{
    struct ht t;
    uint64_t buf = HT_RAM + 0x5000;

    ht_init(&t);
    ht_put64(&t, buf, 5);
    li(&t, 1, buf);
    li(&t, 2, 40);
    emit(&t, LR_W(3, 1));
    emit(&t, SC_W(4, 1, 2)); /* succeeds: 0 */
    emit(&t, SC_W(5, 1, 2)); /* no reservation: 1 */
    emit(&t, AMOADD_W(6, 1, 2));
    emit(&t, AMOMAX_W(7, 1, 0));
    li(&t, 8, 0x1122334455667788ull);
    emit(&t, AMOSWAP_D(9, 1, 8));
    emit(&t, LR_D(10, 1));
    emit(&t, SD(0, 1, 0)); /* value changed: SC fails (QEMU compares the value) */
    emit(&t, SC_D(11, 1, 2));
    emit(&t, ADDI(12, 1, 2));
    emit(&t, SC_W(13, 12, 2)); /* misaligned, no reservation: just fails */
    emit(&t, AMOADD_W(14, 12, 2));
    ht_run(&t);
    CHECK_EQ(X(&t, 3), 5, "lr.w");
    CHECK_EQ(X(&t, 4), 0, "sc.w success");
    CHECK_EQ(X(&t, 5), 1, "sc.w without reservation fails");
    CHECK_EQ(X(&t, 6), 40, "amoadd.w returns old");
    CHECK_EQ(X(&t, 7), 80, "amomax.w returns old");
    CHECK_EQ(X(&t, 9), 80, "amoswap.d returns old");
    CHECK_EQ(X(&t, 10), 0x1122334455667788ull, "lr.d");
    CHECK_EQ(X(&t, 11), 1, "sc.d fails after the value changed");
    CHECK_EQ(X(&t, 13), 1, "misaligned sc without reservation fails quietly");
    CHECK_EQ(t.h->mcause, RV_EXC_LOAD_MISALIGNED, "misaligned AMO: cause 4 as QEMU 7.2");
    CHECK_EQ(t.h->mtval, buf + 2, "misaligned AMO tval");
    ht_fini(&t);

    ht_init(&t);
    li(&t, 1, HT_MMIO);
    emit(&t, AMOADD_W(2, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_STORE_ACCESS, "AMO on MMIO: store access fault");
    ht_fini(&t);
}

static void test_fp(void)
{
    struct ht t;

    /* FS=Off: illegal */
    ht_init(&t);
    emit(&t, FADD_D(1, 2, 3, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "FP op with FS=Off");
    CHECK_EQ(t.h->mtval, FADD_D(1, 2, 3, 0), "tval = FP insn");
    ht_fini(&t);

    ht_init(&t);
    li(&t, 1, 1ull << 13); /* FS = Initial */
    emit(&t, CSRRS(0, C_MSTATUS, 1));
    li(&t, 2, 3);
    emit(&t, FCVT_D_L(1, 2));
    emit(&t, FADD_D(2, 1, 1, 7));
    emit(&t, FMV_X_D(3, 2));
    li(&t, 4, 0x3f800000); /* 1.0f, not NaN-boxed */
    emit(&t, FMV_D_X(4, 4));
    emit(&t, FADD_S(5, 4, 4, 0));
    emit(&t, FMV_X_W(6, 5));
    emit(&t, CSRR(7, C_MSTATUS));
    li(&t, 8, 5);
    emit(&t, CSRW(C_FRM, 8));
    emit(&t, FADD_D(6, 1, 1, 7)); /* dynamic rm with frm=5: illegal */
    ht_run(&t);
    CHECK_EQ(X(&t, 3), 0x4018000000000000ull, "3.0 + 3.0 = 6.0");
    CHECK_EQ(X(&t, 6), 0x7fc00000, "un-boxed single reads as canonical NaN");
    CHECK_EQ(X(&t, 7) & (MSTATUS_FS | MSTATUS_SD), MSTATUS_FS | MSTATUS_SD, "FS dirty + SD");
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "invalid dynamic rounding mode");
    ht_fini(&t);

    ht_init(&t);
    t.h->mstatus |= 1ull << 13;
    emit(&t, FADD_D(1, 2, 3, 5)); /* static rm 5: reserved */
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "invalid static rounding mode");
    ht_fini(&t);
}

static void test_nowhere(void)
{
    struct ht t;

    ht_init(&t);
    t.h->mtvec = 0;
    li(&t, 1, 0);
    emit(&t, JALR(0, 1, 0));
    CHECK_EQ(ht_run(&t), RV_EXIT_FATAL, "jump to 0 with mtvec=0 is fatal");
    CHECK(strstr(rv_hart_error(t.h), "jumped into nowhere") != NULL, "message: %s",
          rv_hart_error(t.h));
    CHECK_EQ(rv_hart_run(t.h, 100), RV_EXIT_FATAL, "stays fatal");
    rv_hart_reset(t.h, HT_RAM);
    CHECK_EQ(rv_hart_error(t.h)[0], 0, "reset clears the error");
    ht_fini(&t);

    /* a fetch fault whose handler is fine is not fatal */
    ht_init(&t);
    li(&t, 1, 0x20000000);
    emit(&t, JALR(0, 1, 0));
    CHECK_EQ(ht_run(&t), RV_EXIT_BUDGET, "fetch fault handled");
    CHECK_EQ(t.h->mcause, RV_EXC_INSN_ACCESS, "fetch access fault");
    CHECK_EQ(t.h->mtval, 0x20000000, "fetch fault tval");
    ht_fini(&t);
}

int main(void)
{
    test_alu();
    test_auipc_branches();
    test_loads_stores();
    test_mmio_and_faults();
    test_illegal();
    test_compressed();
    test_ecall_delegation();
    test_xret_state();
    test_interrupts();
    test_wfi();
    test_csrs();
    test_atomics();
    test_fp();
    test_nowhere();
    return ht_summary();
}
