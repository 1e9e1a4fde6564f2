/*
 * Privilege transitions: M->S->U via mret/sret, ecall from U/S, trap entry
 * state (xPP, xPIE, xIE, xepc, xcause), delegation through medeleg (and
 * that M-mode traps are never delegated), mret/sret restoring MIE/SIE/MPP/
 * SPP/MPRV, privileged instructions and CSRs from lower modes, the
 * TSR/TW/TVM traps, WFI in each mode, and MPRV loads/stores with Sv39.
 * Paging is off except in the MPRV part.
 */
#include "rt.h"

static void print_mstatus(const char *what, uint64_t s)
{
    rt_printf("%s: MIE=%lu MPIE=%lu MPP=%lu SIE=%lu SPIE=%lu SPP=%lu MPRV=%lu\n", what,
              (s >> 3) & 1, (s >> 7) & 1, (s >> 11) & 3, (s >> 1) & 1, (s >> 5) & 1, (s >> 8) & 1,
              (s >> 17) & 1);
}

static void print_last(const char *what)
{
    if (!rt_trap_count) {
        rt_printf("%s: no trap\n", what);
        return;
    }
    rt_printf("%s: cause=%lx tval=%lx from=%d to=%d traps=%lu\n", what,
              (unsigned long)rt_last_trap.cause, (unsigned long)rt_last_trap.tval,
              rt_last_trap.from_mode, rt_last_trap.to_mode, rt_trap_count);
}

/* ---- which mode are we in? ---------------------------------------------- */

/* Probe by CSR access: M can read mstatus, S can read sstatus, U neither. */
static long probe_mode(long unused)
{
    (void)unused;
    unsigned long before = rt_trap_count;
    long mode = 3;
    __asm__ volatile("csrr t0, mstatus" ::: "t0");
    if (rt_trap_count != before) {
        mode = 1;
        before = rt_trap_count;
        __asm__ volatile("csrr t0, sstatus" ::: "t0");
        if (rt_trap_count != before)
            mode = 0;
    }
    return mode;
}

static long ecall_fn(long unused)
{
    (void)unused;
    register long a7 __asm__("a7") = 0;
    register long a0 __asm__("a0") = 0;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a7) : "memory");
    return a0;
}

static const char *const priv_names[] = {"csrr mstatus", "csrr sstatus", "csrr satp",    "mret",
                                         "sret",         "sfence.vma",   "csrr mscratch"};

/* Executes privileged instruction number k (see priv_names). */
static long priv_insn(long k)
{
    switch (k) {
    case 0: __asm__ volatile("csrr t0, mstatus" ::: "t0"); break;
    case 1: __asm__ volatile("csrr t0, sstatus" ::: "t0"); break;
    case 2: __asm__ volatile("csrr t0, satp" ::: "t0"); break;
    case 3: __asm__ volatile("mret"); break;
    case 4: __asm__ volatile("sret"); break;
    case 5: __asm__ volatile("sfence.vma"); break;
    case 6: __asm__ volatile("csrr t0, mscratch" ::: "t0"); break;
    }
    return 0;
}

static void test_modes(void)
{
    rt_trap_reset();
    long m = probe_mode(0);
    long s = rt_run_in_mode(RT_S, probe_mode, 0);
    long u = rt_run_in_mode(RT_U, probe_mode, 0);
    rt_printf("probe: M-run=%ld S-run=%ld U-run=%ld (traps %lu)\n", m, s, u, rt_trap_count);
    RT_CHECK(m == 3 && s == 1 && u == 0);

    /* ecall from each lower mode lands in M with MPP = that mode. */
    rt_trap_reset();
    rt_run_in_mode(RT_U, ecall_fn, 0);
    print_last("ecall from U");
    print_mstatus("  mstatus at trap", rt_last_trap.status);
    rt_trap_reset();
    rt_run_in_mode(RT_S, ecall_fn, 0);
    print_last("ecall from S");
    print_mstatus("  mstatus at trap", rt_last_trap.status);

    /* M-mode CSRs from S, S CSRs from U, xRET from lower modes (sret from S
     * is legal and tested below). */
    for (int mode = RT_U; mode <= RT_S; mode++) {
        for (long k = 0; k < 7; k++) {
            if (mode == RT_S && k == 4)
                continue;
            rt_trap_reset();
            rt_run_in_mode(mode, priv_insn, k);
            rt_printf("%c %-14s", mode == RT_S ? 'S' : 'U', priv_names[k]);
            print_last("");
        }
    }
}

/* ---- delegation --------------------------------------------------------- */

static long illegal_fn(long unused)
{
    (void)unused;
    __asm__ volatile(".word 0xffffffff");
    return 7;
}

static long ebreak_fn(long unused)
{
    (void)unused;
    __asm__ volatile("ebreak");
    return 8;
}

static void test_delegation(void)
{
    csr_write(medeleg, (1UL << CAUSE_ECALL_U) | (1UL << CAUSE_ILLEGAL) | (1UL << CAUSE_BREAKPOINT));
    rt_printf("medeleg=%lx\n", csr_read(medeleg));

    rt_trap_reset();
    rt_run_in_mode(RT_U, ecall_fn, 0);
    print_last("deleg ecall from U");
    print_mstatus("  sstatus at trap", rt_last_trap.status);
    rt_printf("  scause=%lx\n", csr_read(scause));

    rt_trap_reset();
    long r = rt_run_in_mode(RT_U, illegal_fn, 0);
    print_last("deleg illegal from U");
    rt_printf("  ret=%ld\n", r);

    rt_trap_reset();
    r = rt_run_in_mode(RT_S, ebreak_fn, 0);
    print_last("deleg ebreak from S");
    print_mstatus("  sstatus at trap", rt_last_trap.status);

    rt_trap_reset();
    r = rt_run_in_mode(RT_S, ecall_fn, 0);
    print_last("ecall from S (not delegated)");

    /* Traps in M are never delegated. */
    rt_trap_reset();
    __asm__ volatile("ebreak");
    print_last("ebreak in M with medeleg bit");
    rt_trap_reset();
    __asm__ volatile(".word 0xffffffff");
    print_last("illegal in M with medeleg bit");
    csr_write(medeleg, 0);
}

/* ---- xRET semantics ------------------------------------------------------- */

/* mret to M itself with the given MPIE/MPP; returns mstatus after. */
static uint64_t mret_to_m(uint64_t mpie, uint64_t mprv)
{
    uint64_t after;
    uint64_t st = csr_read(mstatus) & ~(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPRV);
    st |= MSTATUS_MPP | (mpie ? MSTATUS_MPIE : 0) | (mprv ? MSTATUS_MPRV : 0);
    csr_write(mstatus, st);
    __asm__ volatile("lla t0, 1f\n\t"
                     "csrw mepc, t0\n\t"
                     "mret\n"
                     "1: csrr %0, mstatus"
                     : "=r"(after)
                     :
                     : "t0", "memory");
    csr_clear(mstatus, MSTATUS_MIE | MSTATUS_MPRV);
    return after;
}

/* In S: sret to S with SPIE/SIE as given; returns sstatus after. */
static long sret_to_s(long spie)
{
    uint64_t after;
    csr_clear(sstatus, MSTATUS_SIE | MSTATUS_SPIE);
    csr_set(sstatus, MSTATUS_SPP | (spie ? MSTATUS_SPIE : 0));
    __asm__ volatile("lla t0, 1f\n\t"
                     "csrw sepc, t0\n\t"
                     "sret\n"
                     "1: csrr %0, sstatus"
                     : "=r"(after)
                     :
                     : "t0", "memory");
    csr_clear(sstatus, MSTATUS_SIE);
    return (long)after;
}

/* In S: sret to U; the U code ends rt_run_in_mode with the mode it sees. */
static long sret_to_u(long unused)
{
    (void)unused;
    csr_clear(sstatus, MSTATUS_SPP);
    csr_set(sstatus, MSTATUS_SPIE);
    __asm__ volatile("lla t0, 1f\n\t"
                     "csrw sepc, t0\n\t"
                     "sret\n"
                     "1: li a0, 0\n\t"
                     "csrr a0, sstatus\n\t" /* traps in U: skipped, a0 stays 0 */
                     "li a7, %0\n\t"
                     "ecall" ::"i"(RT_ECALL_RETURN)
                     : "t0", "a0", "a7", "memory");
    return -1;
}

static void test_xret(void)
{
    print_mstatus("mret M MPIE=1", mret_to_m(1, 0));
    print_mstatus("mret M MPIE=0 MPRV=1", mret_to_m(0, 1));

    /*
     * mret to S; trap entry sets MPIE=MIE, MIE=0.  Priv 1.12 says an mret to
     * a mode below M clears MPRV, but QEMU 7.2 keeps it: not compared.
     */
    csr_set(mstatus, MSTATUS_MPRV);
    rt_trap_reset();
    rt_run_in_mode(RT_S, ecall_fn, 0);
    print_mstatus("after mret to S (seen at the ecall, MPRV masked)",
                  rt_last_trap.status & ~MSTATUS_MPRV);
    csr_clear(mstatus, MSTATUS_MPRV);

    print_mstatus("sret S SPIE=1", (uint64_t)rt_run_in_mode(RT_S, sret_to_s, 1));
    print_mstatus("sret S SPIE=0", (uint64_t)rt_run_in_mode(RT_S, sret_to_s, 0));
    rt_trap_reset();
    long r = rt_run_in_mode(RT_S, sret_to_u, 0);
    rt_printf("sret to U: csrr sstatus in U gave %lx, ", r);
    print_last("trap");
}

/* ---- TSR / TW / TVM / WFI ------------------------------------------------- */

static long wfi_fn(long unused)
{
    (void)unused;
    __asm__ volatile("wfi");
    return 0;
}

static long satp_fn(long unused)
{
    (void)unused;
    __asm__ volatile("csrr t0, satp\n\tcsrw satp, zero" ::: "t0");
    return 0;
}

static long sfence_fn(long unused)
{
    (void)unused;
    __asm__ volatile("sfence.vma zero, zero");
    return 0;
}

static long sret_fn(long unused)
{
    (void)unused;
    /* SPP = S, sepc = after the sret: a plain S -> S return if allowed. */
    __asm__ volatile("csrs sstatus, %0\n\t"
                     "lla t0, 1f\n\t"
                     "csrw sepc, t0\n\t"
                     "sret\n"
                     "1:" ::"r"(MSTATUS_SPP)
                     : "t0", "memory");
    return 0;
}

static void run_case(const char *name, int mode, long (*fn)(long))
{
    rt_trap_reset();
    rt_run_in_mode(mode, fn, 0);
    rt_printf("%-24s %c", name, mode == RT_S ? 'S' : 'U');
    print_last("");
}

/*
 * WFI in S must return: keep a locally enabled S interrupt pending that S
 * does not take (SSIP delegated, sstatus.SIE = 0).  WFI in U traps on QEMU;
 * a machine-timer interrupt 50 ms later is the safety net if it slept.
 */
static void wfi_case(const char *name, int mode)
{
    csr_clear(sstatus, MSTATUS_SIE);
    csr_clear(mstatus, MSTATUS_MPIE);
    if (mode == RT_S) {
        csr_write(mideleg, MIP_SSIP);
        csr_set(mie, MIP_SSIP);
        csr_set(mip, MIP_SSIP);
    } else {
        rt_set_mtimecmp(rt_mtime() + 500000);
        csr_set(mie, MIP_MTIP);
    }
    run_case(name, mode, wfi_fn);
    csr_clear(mie, MIP_SSIP | MIP_MTIP);
    csr_clear(mip, MIP_SSIP);
    csr_write(mideleg, 0);
    rt_set_mtimecmp(-1UL);
}

static void test_tsr_tw_tvm(void)
{
    for (int bit = 0; bit < 2; bit++) {
        if (bit)
            csr_set(mstatus, MSTATUS_TW);
        rt_printf("TW=%d\n", bit);
        wfi_case("  wfi", RT_S);
        wfi_case("  wfi", RT_U);
        csr_clear(mstatus, MSTATUS_TW);
    }
    /* In M, TW does not apply; a pending enabled interrupt ends the WFI. */
    rt_trap_reset();
    csr_set(mie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    csr_set(mstatus, MSTATUS_TW);
    __asm__ volatile("wfi");
    csr_clear(mstatus, MSTATUS_TW);
    csr_clear(mip, MIP_SSIP);
    csr_clear(mie, MIP_SSIP);
    print_last("wfi in M with TW=1");

    for (int bit = 0; bit < 2; bit++) {
        if (bit)
            csr_set(mstatus, MSTATUS_TVM);
        rt_printf("TVM=%d\n", bit);
        run_case("  satp access", RT_S, satp_fn);
        run_case("  sfence.vma", RT_S, sfence_fn);
        run_case("  sfence.vma", RT_U, sfence_fn);
        csr_clear(mstatus, MSTATUS_TVM);
    }
    rt_trap_reset();
    csr_set(mstatus, MSTATUS_TVM);
    __asm__ volatile("csrr t0, satp\n\tsfence.vma" ::: "t0");
    csr_clear(mstatus, MSTATUS_TVM);
    print_last("satp+sfence in M with TVM=1");

    for (int bit = 0; bit < 2; bit++) {
        if (bit)
            csr_set(mstatus, MSTATUS_TSR);
        rt_printf("TSR=%d\n", bit);
        run_case("  sret", RT_S, sret_fn);
        csr_clear(mstatus, MSTATUS_TSR);
    }
}

/* ---- MPRV ----------------------------------------------------------------- */

static uint64_t data_page[512] __attribute__((aligned(4096)));

#define ALIAS_S  0x40000000UL /* S-only RW alias of data_page */
#define ALIAS_U  0x40001000UL /* U RW alias */
#define ALIAS_RO 0x40002000UL

static void mprv_access(const char *what, uint64_t mpp, uint64_t extra, uint64_t va, int store)
{
    uint64_t v = 0xdead;
    uint64_t st = csr_read(mstatus);
    rt_trap_reset();
    csr_write(mstatus, (st & ~(MSTATUS_MPP | MSTATUS_SUM | MSTATUS_MXR)) | (mpp << 11) | extra);
    if (store)
        __asm__ volatile("csrs mstatus, %1\n\t"
                         "sd %2, 0(%0)\n\t"
                         "csrc mstatus, %1" ::"r"(va),
                         "r"(MSTATUS_MPRV), "r"(0x1122334455667788UL)
                         : "memory");
    else
        __asm__ volatile("csrs mstatus, %2\n\t"
                         "ld %0, 0(%1)\n\t"
                         "csrc mstatus, %2"
                         : "+&r"(v)
                         : "r"(va), "r"(MSTATUS_MPRV)
                         : "memory");
    csr_write(mstatus, st);
    rt_printf("MPRV %-26s %s va=%lx -> %lx data[0]=%lx", what, store ? "sd" : "ld",
              (unsigned long)va, (unsigned long)v, (unsigned long)data_page[0]);
    print_last("");
}

static void test_mprv(void)
{
    rt_pt_reset();
    uint64_t *root = rt_pt_identity(3);
    const uint64_t ad = PTE_A | PTE_D;
    rt_pt_map(root, 3, ALIAS_S, (uintptr_t)data_page, 0, PTE_R | PTE_W | ad);
    rt_pt_map(root, 3, ALIAS_U, (uintptr_t)data_page, 0, PTE_R | PTE_W | PTE_U | ad);
    rt_pt_map(root, 3, ALIAS_RO, (uintptr_t)data_page, 0, PTE_R | ad);
    csr_write(satp, rt_satp(SATP_MODE_SV39, root));
    __asm__ volatile("sfence.vma" ::: "memory");
    data_page[0] = 0xabcdef;

    mprv_access("MPP=S S-page", RT_S, 0, ALIAS_S, 0);
    mprv_access("MPP=S S-page", RT_S, 0, ALIAS_S, 1);
    data_page[0] = 0xabcdef;
    mprv_access("MPP=S U-page SUM=0", RT_S, 0, ALIAS_U, 0);
    mprv_access("MPP=S U-page SUM=1", RT_S, MSTATUS_SUM, ALIAS_U, 0);
    mprv_access("MPP=U U-page", RT_U, 0, ALIAS_U, 0);
    mprv_access("MPP=U S-page", RT_U, 0, ALIAS_S, 0);
    mprv_access("MPP=S RO-page", RT_S, 0, ALIAS_RO, 1);
    mprv_access("MPP=M (no translation)", RT_M, 0, (uintptr_t)data_page, 0);
    mprv_access("MPP=S unmapped", RT_S, 0, 0x40003000UL, 0);
    mprv_access("MPP=S identity", RT_S, 0, (uintptr_t)data_page, 0);

    /* MPRV does not affect fetch: M keeps running untranslated code. */
    rt_trap_reset();
    csr_set(mstatus, MSTATUS_MPRV | (1UL << 11));
    __asm__ volatile("nop\n\tnop");
    csr_clear(mstatus, MSTATUS_MPRV);
    print_last("MPRV fetch");
    csr_write(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    csr_clear(mstatus, MSTATUS_MPP);
}

int main(void)
{
    test_modes();
    test_delegation();
    test_xret();
    test_tsr_tw_tvm();
    test_mprv();
    return rt_check_failures();
}
