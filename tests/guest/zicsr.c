/*
 * Zicsr: csrrw/csrrs/csrrc and their immediate forms (old value returned,
 * rs1 = x0 / uimm = 0 means no write), read-only CSRs trapping on writes
 * (but not on csrrs/csrrc with x0), which CSRs exist in M-mode, boot values
 * of the architectural M/S state, and the WARL behaviour of mstatus,
 * sstatus, mie/mip/sie/sip, medeleg/mideleg, mtvec/stvec modes, mepc/sepc
 * alignment, satp modes, counter enables and PMP registers.
 *
 * Implementation-identity CSRs (mvendorid, marchid, mimpid) are only checked
 * for existence, and the hpmcounters are left out: QEMU 7.2 traps on
 * hpmcounter19..31 although the spec says every counter CSR exists.
 */
#include "rt.h"

#define PROBE(num, name, show)                                                                     \
    do {                                                                                           \
        unsigned long v = 0;                                                                       \
        rt_trap_reset();                                                                           \
        __asm__ volatile("li %0, 0\n\tcsrr %0, " #num : "=&r"(v)::"memory");                       \
        if (rt_trap_count)                                                                         \
            rt_printf("csr %s (%s): illegal (cause %lx)\n", #num, name,                            \
                      (unsigned long)rt_last_trap.cause);                                          \
        else if (show)                                                                             \
            rt_printf("csr %s (%s): %lx\n", #num, name, v);                                        \
        else                                                                                       \
            rt_printf("csr %s (%s): exists\n", #num, name);                                        \
    } while (0)

static void test_exists(void)
{
    PROBE(0x001, "fflags", 1);
    PROBE(0x002, "frm", 1);
    PROBE(0x003, "fcsr", 1);
    PROBE(0xc00, "cycle", 0);
    PROBE(0xc01, "time", 0);
    PROBE(0xc02, "instret", 0);
    PROBE(0x100, "sstatus", 1);
    PROBE(0x104, "sie", 1);
    PROBE(0x105, "stvec", 0);
    PROBE(0x106, "scounteren", 1);
    PROBE(0x10a, "senvcfg", 1);
    PROBE(0x140, "sscratch", 0);
    PROBE(0x141, "sepc", 1);
    PROBE(0x142, "scause", 1);
    PROBE(0x143, "stval", 1);
    PROBE(0x144, "sip", 1);
    PROBE(0x14d, "stimecmp (Sstc, absent)", 1);
    PROBE(0x180, "satp", 1);
    PROBE(0xf11, "mvendorid", 0);
    PROBE(0xf12, "marchid", 0);
    PROBE(0xf13, "mimpid", 0);
    PROBE(0xf14, "mhartid", 1);
    PROBE(0xf15, "mconfigptr", 1);
    PROBE(0x300, "mstatus", 0);
    PROBE(0x301, "misa", 1);
    PROBE(0x302, "medeleg", 1);
    PROBE(0x303, "mideleg", 1);
    PROBE(0x304, "mie", 1);
    PROBE(0x305, "mtvec", 0);
    PROBE(0x306, "mcounteren", 1);
    PROBE(0x30a, "menvcfg", 1);
    PROBE(0x310, "mstatush (RV32 only)", 1);
    PROBE(0x320, "mcountinhibit", 1);
    PROBE(0x340, "mscratch", 0);
    PROBE(0x341, "mepc", 0);
    PROBE(0x342, "mcause", 0);
    PROBE(0x343, "mtval", 0);
    PROBE(0x344, "mip", 0);
    PROBE(0x34a, "mtinst (H only)", 1);
    PROBE(0x3a0, "pmpcfg0", 0);
    PROBE(0x3a1, "pmpcfg1 (RV32 only)", 1);
    PROBE(0x3a2, "pmpcfg2", 1);
    PROBE(0x3b0, "pmpaddr0", 0);
    PROBE(0x3bf, "pmpaddr15", 1);
    PROBE(0xb00, "mcycle", 0);
    PROBE(0xb02, "minstret", 0);
    PROBE(0x7c0, "custom", 1);
    PROBE(0x5c0, "custom S", 1);
    PROBE(0x800, "custom U", 1);
    PROBE(0x7b0, "dcsr (debug mode only)", 1);
    PROBE(0x600, "hstatus (H only)", 1);
}

/* mscratch holds the runtime's trap stack: no trap may happen in here. */
static void test_ops(void)
{
    unsigned long o1, o2, o3, o4, o5, o6, fin;
    unsigned long saved = csr_read(mscratch);
    csr_write(mscratch, 0xf0f0);
    __asm__ volatile("csrrw %0, mscratch, %7\n\t"
                     "csrrs %1, mscratch, %8\n\t"
                     "csrrc %2, mscratch, %9\n\t"
                     "csrrwi %3, mscratch, 0x15\n\t"
                     "csrrsi %4, mscratch, 0x0a\n\t"
                     "csrrci %5, mscratch, 0x11\n\t"
                     "csrrs %6, mscratch, x0"
                     : "=&r"(o1), "=&r"(o2), "=&r"(o3), "=&r"(o4), "=&r"(o5), "=&r"(o6), "=&r"(fin)
                     : "r"(0x123456789abcdef0UL), "r"(0x0fUL), "r"(0xff00000000000000UL));
    csr_write(mscratch, saved);
    rt_printf("csr ops: %lx %lx %lx %lx %lx %lx final %lx\n", o1, o2, o3, o4, o5, o6, fin);
    RT_CHECK(o1 == 0xf0f0 && o2 == 0x123456789abcdef0 && o3 == 0x123456789abcdeff);
    RT_CHECK(o4 == 0x3456789abcdeff && o5 == 0x15 && o6 == 0x1f && fin == 0x0e);
    /* rd = rs1: the old value is returned and the register's old value written. */
    unsigned long r = 0x77, now;
    csr_write(mscratch, 0xe);
    __asm__ volatile("csrrw %0, mscratch, %0" : "+r"(r));
    now = csr_read(mscratch);
    csr_write(mscratch, saved);
    rt_printf("csrrw rd==rs1: old %lx now %lx\n", r, now);
    csr_write(mscratch, 0x77);
    /* rs1 = x0 with csrrc, uimm = 0 with csrrsi: no write */
    __asm__ volatile("csrrc %0, mscratch, x0\n\tcsrrsi %1, mscratch, 0" : "=&r"(o1), "=&r"(o2));
    csr_write(mscratch, saved);
    rt_printf("no-write forms: %lx %lx\n", o1, o2);
}

#define TRY(label, insn)                                                                           \
    do {                                                                                           \
        unsigned long v = 0;                                                                       \
        rt_trap_reset();                                                                           \
        __asm__ volatile("li %0, 0\n\t" insn : "=&r"(v)::"t0", "memory");                          \
        rt_printf("%s: %s", label, rt_trap_count ? "trap" : "ok");                                 \
        if (rt_trap_count)                                                                         \
            rt_printf(" cause=%lx tval=%lx", (unsigned long)rt_last_trap.cause,                    \
                      (unsigned long)rt_last_trap.tval);                                           \
        rt_printf("\n");                                                                           \
    } while (0)

static void test_readonly(void)
{
    TRY("csrr mhartid", "csrr %0, mhartid");
    TRY("csrrs mhartid, x0", "csrrs %0, mhartid, x0");
    TRY("csrrc mhartid, x0", "csrrc %0, mhartid, x0");
    TRY("csrrsi mhartid, 0", "csrrsi %0, mhartid, 0");
    TRY("csrrw mhartid", "csrrw %0, mhartid, x0");
    /* Not tested: csrrs mhartid, t0 with t0 = 0 must trap (it writes), but
     * QEMU 7.2 only traps when the value written would change. */
    TRY("csrrsi mhartid, 1", "csrrsi %0, mhartid, 1");
    TRY("csrrwi mvendorid", "csrrwi %0, mvendorid, 0");
    TRY("csrw cycle", "csrw cycle, x0");
    TRY("csrw time", "csrw time, x0");
    TRY("csrs instret", "li t0, 1\n\tcsrs instret, t0");
    TRY("csrw mconfigptr", "csrw mconfigptr, x0");
    TRY("csrw misa (writable or ignored)", "csrr t0, misa\n\tcsrw misa, t0");
}

/*
 * The WARL checks below mask out what QEMU 7.2 gets wrong for an RV64GC
 * hart without H/V (see the notes in the test report): it lets software
 * write mstatus.VS, UXL = 3, MPV/GVA, the VS-level and LCOFI bits of
 * mie/mip/mideleg, medeleg[10] and [11], all 64 bits of mcounteren,
 * scounteren and pmpaddr, bit 0 of mepc/sepc, keeps the reserved MPP = 2
 * and the reserved pmpcfg R=0/W=1; it also implements Sv57.
 */
#define MSTATUS_SPEC_FIELDS                                                                        \
    (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_MPIE | MSTATUS_SPP |         \
     MSTATUS_MPP | MSTATUS_FS | MSTATUS_XS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR |            \
     MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR | MSTATUS_SXL | (1UL << 36) | (1UL << 37))
#define SSTATUS_SPEC_FIELDS                                                                        \
    (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_XS |            \
     MSTATUS_SUM | MSTATUS_MXR)
#define IRQ_SPEC_BITS     0xaaaUL
#define MEDELEG_SPEC_BITS 0xb3ffUL /* causes 0-9, 12, 13, 15 */

static void print_boot(void)
{
    rt_printf("boot: mstatus %lx medeleg %lx mideleg %lx mie %lx satp %lx mcounteren %lx "
              "scounteren %lx\n",
              csr_read(mstatus), csr_read(medeleg), csr_read(mideleg), csr_read(mie),
              csr_read(satp), csr_read(mcounteren), csr_read(scounteren));
}

static void test_warl(void)
{
    unsigned long save, v;

    save = csr_read(mstatus);
    /* All ones, but MIE/SIE off so no interrupt can be taken here. */
    csr_write(mstatus, ~(MSTATUS_MIE | MSTATUS_SIE));
    v = csr_read(mstatus);
    csr_write(mstatus, save);
    rt_printf("mstatus <- ~MIE~SIE: spec fields %lx\n", v & MSTATUS_SPEC_FIELDS);
    csr_write(mstatus, ~(MSTATUS_MIE | MSTATUS_SIE | MSTATUS_FS));
    v = csr_read(mstatus);
    csr_write(mstatus, save);
    rt_printf("mstatus <- ~MIE~SIE~FS: spec fields %lx\n", v & MSTATUS_SPEC_FIELDS);
    csr_write(mstatus, save & ~MSTATUS_MPP);
    rt_printf("mstatus.MPP <- 0: MPP=%lu\n", (csr_read(mstatus) >> 11) & 3);
    csr_write(mstatus, save);
    csr_write(sstatus, ~(MSTATUS_SIE));
    v = csr_read(sstatus);
    rt_printf("sstatus <- ~SIE: sstatus %lx mstatus %lx\n", v & SSTATUS_SPEC_FIELDS,
              csr_read(mstatus) & MSTATUS_SPEC_FIELDS);
    csr_write(mstatus, save);
    rt_printf("sstatus view of mstatus %lx: %lx\n", save & MSTATUS_SPEC_FIELDS,
              csr_read(sstatus) & SSTATUS_SPEC_FIELDS);
    RT_CHECK(((csr_read(sstatus) ^ save) & SSTATUS_SPEC_FIELDS) == 0);

    csr_write(mie, -1L);
    rt_printf("mie <- ~0: %lx\n", csr_read(mie) & IRQ_SPEC_BITS);
    csr_write(mideleg, -1L);
    rt_printf("mideleg <- ~0: %lx\n", csr_read(mideleg) & IRQ_SPEC_BITS);
    rt_printf("sie with mideleg=~0: %lx\n", csr_read(sie) & IRQ_SPEC_BITS);
    csr_write(sie, 0);
    rt_printf("sie <- 0: sie %lx mie %lx\n", csr_read(sie) & IRQ_SPEC_BITS,
              csr_read(mie) & IRQ_SPEC_BITS);
    csr_write(mideleg, 0);
    csr_write(mie, -1L);
    rt_printf("sie with mideleg=0: %lx\n", csr_read(sie) & IRQ_SPEC_BITS);
    csr_write(mie, 0);
    csr_write(medeleg, -1L);
    rt_printf("medeleg <- ~0: %lx\n", csr_read(medeleg) & MEDELEG_SPEC_BITS);
    csr_write(medeleg, 0);

    /* mip: only SSIP, STIP, SEIP are writable by M software. */
    csr_write(mip, -1L);
    rt_printf("mip <- ~0: %lx\n", csr_read(mip) & (MIP_SSIP | MIP_STIP | MIP_SEIP));
    csr_write(mideleg, MIP_SSIP | MIP_STIP | MIP_SEIP);
    rt_printf("sip (delegated) %lx\n", csr_read(sip) & IRQ_SPEC_BITS);
    csr_write(sip, 0);
    rt_printf("sip <- 0: mip %lx\n", csr_read(mip) & (MIP_SSIP | MIP_STIP | MIP_SEIP));
    csr_write(mip, 0);
    csr_write(mideleg, 0);

    save = csr_read(mtvec);
    csr_write(mtvec, 0x80001001UL);
    v = csr_read(mtvec);
    csr_write(mtvec, 0x80001002UL);
    rt_printf("mtvec <- 80001001: %lx; <- 80001002 (reserved mode): %lx\n", v, csr_read(mtvec));
    csr_write(mtvec, save);
    save = csr_read(stvec);
    csr_write(stvec, 0x80002001UL);
    v = csr_read(stvec);
    csr_write(stvec, 0x80002003UL);
    rt_printf("stvec <- 80002001: %lx; <- 80002003 (reserved mode): %lx\n", v, csr_read(stvec));
    csr_write(stvec, save);

    csr_write(mepc, 0x80000006UL);
    rt_printf("mepc <- 80000006: %lx\n", csr_read(mepc));
    csr_write(sepc, 0xfffffffffffffffeUL);
    rt_printf("sepc <- fffffffffffffffe: %lx\n", csr_read(sepc));

    csr_write(mcounteren, -1L);
    rt_printf("mcounteren <- ~0: %lx\n", csr_read(mcounteren) & 0xffffffff);
    csr_write(mcounteren, 0);
    csr_write(scounteren, -1L);
    rt_printf("scounteren <- ~0: %lx\n", csr_read(scounteren) & 0xffffffff);
    csr_write(scounteren, 0);

    /* satp: reserved modes leave it unchanged; Sv39/Sv48 are kept with the
     * ASID bits the implementation has (16 on QEMU). */
    csr_write(satp, (8UL << 60) | (0xffffUL << 44) | 0x80123);
    rt_printf("satp <- Sv39, ASID ffff: %lx\n", csr_read(satp));
    csr_write(satp, (1UL << 60) | 0x12345);
    rt_printf("satp <- mode 1: %lx\n", csr_read(satp));
    csr_write(satp, (15UL << 60) | 0x12345);
    rt_printf("satp <- mode 15: %lx\n", csr_read(satp));
    csr_write(satp, (9UL << 60) | 0x80456);
    rt_printf("satp <- Sv48: %lx\n", csr_read(satp));
    csr_write(satp, 0);
    rt_printf("satp <- 0: %lx\n", csr_read(satp));

    /* PMP: entry 1 (entry 0 is the runtime's allow-all), cfg byte 1. */
    csr_write(pmpaddr1, 0x003fffffffffffffUL);
    rt_printf("pmpaddr1 <- 2^54-1: %lx\n", csr_read(pmpaddr1));
    csr_write(pmpaddr1, 0x20001234UL);
    rt_printf("pmpaddr1 <- 20001234: %lx\n", csr_read(pmpaddr1));
    csr_write(pmpaddr1, 0);
    save = csr_read(pmpcfg0);
    csr_write(pmpcfg0, save | (0x1fUL << 8));
    rt_printf("pmpcfg0 <- entry1 NAPOT RWX: %lx\n", csr_read(pmpcfg0));
    csr_write(pmpcfg0, save | (0x0dUL << 8));
    rt_printf("pmpcfg0 <- entry1 TOR RX: %lx\n", csr_read(pmpcfg0));
    csr_write(pmpcfg0, save);
}

int main(void)
{
    print_boot();
    test_exists();
    test_ops();
    test_readonly();
    test_warl();
    return rt_check_failures();
}
