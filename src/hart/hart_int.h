/*
 * Private state of the RISC-V hart, shared by the files of src/hart/ only.
 *
 * Architectural state (registers, CSRs, privilege, reservation) is plain data
 * in struct rv_hart.  Everything else in it is a cache that can be dropped at
 * any time with rv_flush_all(): the software TLBs (guest virtual page -> host
 * pointer), the jump caches (guest virtual pc -> decoded block) and the decode
 * cache (blocks of pre-decoded instructions, keyed by guest physical address).
 *
 * Invariants the fast paths rely on:
 *  - x[0] is never written: decode turns rd=0 into RV_XSINK (x[32]).
 *  - a write-TLB entry never maps a page that holds decoded code, so a store
 *    that hits the write TLB cannot modify decoded instructions; stores to code
 *    pages take the slow path, which invalidates the page's blocks if needed.
 *  - a write-TLB entry exists only for a page already marked dirty in gmem
 *    since the last collection (dirty_gen), TinyEMU style.
 *  - TLB entries exist only for RAM pages whose PMP permission is uniform.
 */
#ifndef GODWIT_HART_HART_INT_H
#define GODWIT_HART_HART_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "hart/hart.h"

enum { RV_PRV_U = 0, RV_PRV_S = 1, RV_PRV_M = 3 };

/* mstatus (privileged spec §3.1.6) */
#define MSTATUS_SIE       (1ull << 1)
#define MSTATUS_MIE       (1ull << 3)
#define MSTATUS_SPIE      (1ull << 5)
#define MSTATUS_MPIE      (1ull << 7)
#define MSTATUS_SPP       (1ull << 8)
#define MSTATUS_VS        (3ull << 9)
#define MSTATUS_MPP       (3ull << 11)
#define MSTATUS_FS        (3ull << 13)
#define MSTATUS_XS        (3ull << 15)
#define MSTATUS_MPRV      (1ull << 17)
#define MSTATUS_SUM       (1ull << 18)
#define MSTATUS_MXR       (1ull << 19)
#define MSTATUS_TVM       (1ull << 20)
#define MSTATUS_TW        (1ull << 21)
#define MSTATUS_TSR       (1ull << 22)
#define MSTATUS_UXL       (3ull << 32)
#define MSTATUS_SXL       (3ull << 34)
#define MSTATUS_SD        (1ull << 63)
#define MSTATUS_MPP_SHIFT 11
#define MSTATUS_FS_DIRTY  (3ull << 13)

/* Synchronous exception causes (privileged spec table 3.6). */
enum {
    RV_EXC_INSN_MISALIGNED = 0,
    RV_EXC_INSN_ACCESS = 1,
    RV_EXC_ILLEGAL = 2,
    RV_EXC_BREAKPOINT = 3,
    RV_EXC_LOAD_MISALIGNED = 4,
    RV_EXC_LOAD_ACCESS = 5,
    RV_EXC_STORE_MISALIGNED = 6,
    RV_EXC_STORE_ACCESS = 7,
    RV_EXC_ECALL_U = 8,
    RV_EXC_ECALL_S = 9,
    RV_EXC_ECALL_M = 11,
    RV_EXC_INSN_PAGE = 12,
    RV_EXC_LOAD_PAGE = 13,
    RV_EXC_STORE_PAGE = 15,
};
#define RV_CAUSE_INTR (1ull << 63)

enum rv_access { RV_ACC_R = 0, RV_ACC_W = 1, RV_ACC_X = 2 };

#define RV_PAGE_MASK (~(uint64_t)0xfff)

/* ---- software TLB -------------------------------------------------------- */

#define RV_TLB_BITS    13
#define RV_TLB_SIZE    (1u << RV_TLB_BITS)
#define RV_TLB_INVALID UINT64_MAX /* low bits set: never equals a masked address */

struct rv_tlb_entry {
    uint64_t tag;     /* virtual page address, or RV_TLB_INVALID */
    uintptr_t addend; /* host address = guest virtual address + addend */
};

/* Direct-mapped; log lists the indices filled since the last flush, so a
 * flush costs what was used, not the table size. */
struct rv_tlb {
    struct rv_tlb_entry e[RV_TLB_SIZE];
    uint16_t log[RV_TLB_SIZE];
    uint32_t n;
};

struct rv_dtlb {
    struct rv_tlb r;
    struct rv_tlb w;
};

/* Data accesses have one TLB per effective privilege (SUM splits S in two)
 * so that xRET, traps, MPRV and SUM changes need no flush. */
enum { RV_DMODE_U, RV_DMODE_S, RV_DMODE_S_SUM, RV_DMODE_M, RV_DMODE_N };
/* Fetches: one TLB (and one jump cache) per privilege. */
enum { RV_IMODE_U, RV_IMODE_S, RV_IMODE_M, RV_IMODE_N };

/* ---- decode cache -------------------------------------------------------- */

/* One pre-decoded instruction.  Register numbers index x[] (rd 0 -> sink)
 * or f[]; imm is the sign-extended immediate (CSR ops: the CSR number). */
struct rv_block;
struct rv_insn {
    uint8_t op;
    uint8_t rd, rs1, rs2;
    int32_t imm;
    uint8_t rs3;
    uint8_t rm;        /* FP rounding mode field; AMO: funct5 */
    uint8_t len;       /* 2 or 4 */
    uint8_t chainable; /* static successor in the same page: may set chain */
    uint16_t pcoff;    /* byte offset from the block's first instruction */
    uint16_t pad;
    struct rv_block *chain; /* block at the static target, once looked up */
    const void *handler;    /* exec.c label for op: dispatch is one load + jump */
};

#define RV_XSINK     32  /* x[32] absorbs writes to x0 */
#define RV_BLOCK_MAX 128 /* instructions per block, terminator included */

struct rv_block {
    uint64_t paddr;         /* guest physical address of the first insn */
    struct rv_block *hnext; /* hash chain (by paddr) */
    struct rv_block *pnext; /* blocks of the same physical page */
    uint32_t n;             /* number of insns, terminator included */
    uint8_t valid;          /* cleared when its page was written */
    uint8_t cross;          /* one insn straddling two pages (never cached) */
    uint32_t raw_cross;     /* its raw bits (for tval) */
    struct rv_insn insns[];
};

#define RV_JC_BITS 12
#define RV_JC_SIZE (1u << RV_JC_BITS)
struct rv_jc_entry {
    uint64_t pc; /* guest virtual pc, or 1 (never a valid pc) */
    struct rv_block *blk;
};

struct rv_jc {
    struct rv_jc_entry e[RV_JC_SIZE];
    uint16_t log[RV_JC_SIZE];
    uint32_t n;
};

struct rv_code_page {
    struct rv_block *blocks; /* decoded blocks in this physical page */
    uint64_t mask;           /* 64-byte chunks holding decoded code */
    bool listed;             /* in rv_hart.code_list */
};

#define RV_BHASH_BITS 16
#define RV_ARENA_SIZE (48u << 20)

/* ---- the hart ------------------------------------------------------------ */

struct rv_hart {
    /* hot state first: the interpreter touches these on every instruction */
    uint64_t x[33]; /* x[32] is the sink for rd = x0 */
    uint64_t pc;
    uint64_t instret;        /* retired instructions since reset */
    struct rv_dtlb *dtlb;    /* data TLB for the current effective mode */
    struct rv_tlb *itlb;     /* fetch TLB for the current privilege */
    struct rv_jc *jc;        /* jump cache for the current privilege */
    _Atomic uint32_t signal; /* nonzero: leave the inner loop and look around */
    uint32_t priv;
    uint64_t dirty_gen; /* gmem->dirty_gen when the write TLBs were last valid */
    struct gmem *mem;
    const void *const *disp; /* exec.c's handler table, set on each rv_exec entry */

    uint64_t f[32];
    uint32_t fflags, frm;

    /* CSRs */
    uint64_t mstatus; /* SD is computed on read */
    uint64_t misa;
    uint64_t medeleg, mideleg;
    uint64_t mie;
    uint64_t mip_sw;         /* software-written SSIP/STIP/SEIP */
    _Atomic uint64_t mip_hw; /* lines raised by devices (rv_hart_set_irq) */
    uint64_t mtvec, stvec;
    uint64_t mscratch, sscratch;
    uint64_t mepc, sepc;
    uint64_t mcause, scause;
    uint64_t mtval, stval;
    uint64_t mcounteren, scounteren, mcountinhibit;
    uint64_t menvcfg, senvcfg;
    uint64_t satp;
    uint64_t cycle_base, instret_base;     /* counter = instret - base */
    uint64_t cycle_frozen, instret_frozen; /* values while inhibited */
    uint8_t pmpcfg[16];
    uint64_t pmpaddr[16];
    unsigned pmp_n;                  /* implemented entries */
    unsigned pmp_active;             /* entries with A != OFF */
    uint64_t pmp_lo[16], pmp_hi[16]; /* inclusive ranges, derived from the CSRs */
    uint32_t pmp_on;                 /* bit i: entry i matches something */
    bool pmp_m_open;                 /* no active locked entry: M-mode unrestricted */

    /* LR/SC (QEMU semantics: SC compares the value loaded by LR) */
    uint64_t resv_addr; /* virtual address, or UINT64_MAX */
    uint64_t resv_val;

    /* pending exception reported by a slow path */
    uint64_t exc_cause, exc_tval;

    _Atomic uint32_t exit_req;
    bool fatal;
    char err[256];

    struct rv_hart_config cfg;
    struct rv_hart_env env;

    /* caches (never state) */
    struct rv_dtlb dtlbs[RV_DMODE_N];
    struct rv_tlb itlbs[RV_IMODE_N];
    struct rv_jc jcs[RV_IMODE_N];
    struct rv_block **bhash;   /* RV_BHASH_BITS buckets */
    struct rv_code_page *code; /* one per RAM page */
    uint32_t *code_list;       /* indices of pages that got code since the last flush */
    size_t code_list_n;
    uint8_t *arena;
    size_t arena_used;
    uint64_t flush_gen;           /* bumped by rv_flush_blocks: old block pointers are dead */
    uint64_t own_marks;           /* gmem_mark_dirty calls made by this hart */
    uint64_t dirtied;             /* clean pages this hart made dirty (rv_hart_dirtied) */
    uint64_t wgen_seen, own_seen; /* mem->write_gen, own_marks at the last flush */
    bool attached;                /* counted in mem->harts */
    /* 1 GiB virtual regions holding superpage translations cached since the
     * last full U/S flush: SFENCE.VMA of an address outside them can drop
     * just that page's entries (see rv_tlb_flush_page) */
    uint64_t super_region[8];
    unsigned super_n;
    bool super_overflow;
    /* pages fetched from in U/S mode since that flush, hashed to 4096 bits:
     * only those can have jump-cache entries to drop */
    uint64_t fetch_pages[64];
    union {
        struct rv_block b;
        uint8_t space[sizeof(struct rv_block) + 2 * sizeof(struct rv_insn)];
    } xblk; /* temporary block for an instruction straddling two pages */
};

/* ---- inline helpers -------------------------------------------------------- */

static inline uint64_t rv_mip(const struct rv_hart *h)
{
    return atomic_load_explicit(&h->mip_hw, memory_order_relaxed) | h->mip_sw;
}

/* Ask the run loop to re-examine interrupts/exit requests at the next block. */
static inline void rv_kick(struct rv_hart *h)
{
    atomic_store_explicit(&h->signal, 1, memory_order_relaxed);
}

static inline bool rv_fs_off(const struct rv_hart *h)
{
    return (h->mstatus & MSTATUS_FS) == 0;
}

static inline void rv_fs_dirty(struct rv_hart *h)
{
    h->mstatus |= MSTATUS_FS_DIRTY;
}

/* trap.c */
void rv_raise(struct rv_hart *h, uint64_t cause, uint64_t tval, uint64_t epc);
void rv_set_priv(struct rv_hart *h, unsigned priv);
void rv_update_modes(struct rv_hart *h);
int rv_pending_irq(const struct rv_hart *h);
int rv_mret(struct rv_hart *h);
int rv_sret(struct rv_hart *h);
void rv_fatal(struct rv_hart *h, const char *fmt, ...) gw_printf(2, 3);

/* csr.c */
int rv_csr_insn(struct rv_hart *h, const struct rv_insn *ins, unsigned funct3);
void rv_csr_reset(struct rv_hart *h);

/* The CSRs a state load must check against their write masks (WARL fields
 * that CSR writes could never have produced), as loaded, not yet applied. */
struct rv_csr_image {
    uint64_t mstatus, medeleg, mideleg, mie, mip_sw, mtvec, stvec, mepc, sepc;
    uint64_t menvcfg, senvcfg, satp;
    uint32_t fflags, frm;
};
/* NULL if every value in c is one the CSR instructions can produce, else
 * why not (static string). */
const char *rv_csr_check(const struct rv_csr_image *c);

/* mmu.c */
int rv_load_slow(struct rv_hart *h, uint64_t va, unsigned size, uint64_t *val);
int rv_store_slow(struct rv_hart *h, uint64_t va, unsigned size, uint64_t val);
int rv_amo(struct rv_hart *h, const struct rv_insn *ins, bool dword);
int rv_fetch_translate(struct rv_hart *h, uint64_t va, uint64_t *pa, uint8_t **host);
void rv_tlb_flush(struct rv_hart *h);
void rv_tlb_flush_page(struct rv_hart *h, uint64_t va);
void rv_tlb_clear(struct rv_tlb *t);
void rv_tlb_clear_all(struct rv_hart *h);
void rv_tlb_flush_write(struct rv_hart *h);
void rv_tlb_flush_data(struct rv_hart *h);
void rv_tlb_evict_wpage(struct rv_hart *h, uint64_t ppage);
void rv_pmp_changed(struct rv_hart *h);
bool rv_pmp_check(const struct rv_hart *h, uint64_t pa, unsigned size, enum rv_access acc,
                  unsigned priv);

/* hart.c (decode cache) */
struct rv_block *rv_block_find(struct rv_hart *h, uint64_t vpc);
void rv_flush_blocks(struct rv_hart *h);
void rv_jc_flush(struct rv_hart *h);
void rv_jc_clear(struct rv_jc *j);
void rv_jc_insert(struct rv_jc *j, uint64_t pc, struct rv_block *b);
bool rv_code_write(struct rv_hart *h, uint64_t pa, unsigned size);
uint32_t rv_insn_raw(struct rv_hart *h, const struct rv_block *b, const struct rv_insn *ins);
/* Every dirty marking by the hart goes through here (see rv_fence_i). */
static inline void rv_mark_dirty(struct rv_hart *h, uint64_t pa, uint64_t len)
{
    h->dirtied += gmem_mark_dirty(h->mem, pa, len);
    h->own_marks++;
}
void rv_fence_i(struct rv_hart *h);
static inline bool rv_page_has_code(const struct rv_hart *h, uint64_t pa)
{
    return h->code[(pa - h->mem->base) >> 12].blocks != NULL;
}

/* decode.c */
void rv_decode(uint32_t raw, struct rv_insn *ins);
bool rv_op_ends_block(unsigned op);

/* exec.c */
int rv_exec(struct rv_hart *h, uint64_t limit);
enum { RV_EXEC_YIELD = 0, RV_EXEC_WFI = 1, RV_EXEC_FATAL = 2 };

/* exec_fp.c: returns 0, or -1 for illegal instruction */
int rv_exec_fp(struct rv_hart *h, const struct rv_insn *ins);

#endif
