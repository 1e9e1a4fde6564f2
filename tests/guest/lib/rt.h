/*
 * godwit guest runtime: a tiny bare-metal library for the test programs in
 * tests/guest/ (and bench/cpu).  It runs on QEMU's virt board and on
 * godwit-vm with `-bios none -kernel prog.elf`, entered in M-mode on hart 0.
 *
 *  - console: 16550 UART at 0x10000000 (polled), rt_printf with
 *    %d %i %u %x %X %p %s %c %%, flags '0' '-' '+', width, l/ll/z lengths;
 *  - exit: sifive test device at 0x100000 (0x5555 pass, (code<<16)|0x3333);
 *  - traps: every trap lands in rt_trap_m (M) or rt_trap_s (S, if delegated),
 *    which records it in rt_last_trap and, unless a hook handles it, skips
 *    the faulting instruction (fetch faults return to ra instead; interrupts
 *    clear their enable bit);
 *  - privilege: rt_run_in_mode() runs a function in S or U and comes back;
 *  - paging: Sv39/Sv48 page tables from a static pool (rt_pt_*).
 *
 * main() runs in M-mode with mstatus.FS = Initial and PMP entry 0 open; its
 * return value is the exit status (0 = pass).
 */
#ifndef GODWIT_GUEST_RT_H
#define GODWIT_GUEST_RT_H

#include <stdarg.h>
#include <stdint.h>

#include "rt_asm.h"

#define RT_UART_BASE      0x10000000UL
#define RT_TEST_BASE      0x00100000UL
#define RT_CLINT_BASE     0x02000000UL
#define RT_CLINT_MSIP     (RT_CLINT_BASE + 0x0)
#define RT_CLINT_MTIMECMP (RT_CLINT_BASE + 0x4000)
#define RT_CLINT_MTIME    (RT_CLINT_BASE + 0xbff8)

/* Privilege levels (as in mstatus.MPP). */
enum { RT_U = 0, RT_S = 1, RT_M = 3 };

/* mstatus bits */
#define MSTATUS_SIE  (1UL << 1)
#define MSTATUS_MIE  (1UL << 3)
#define MSTATUS_SPIE (1UL << 5)
#define MSTATUS_UBE  (1UL << 6)
#define MSTATUS_MPIE (1UL << 7)
#define MSTATUS_SPP  (1UL << 8)
#define MSTATUS_MPP  (3UL << 11)
#define MSTATUS_FS   (3UL << 13)
#define MSTATUS_XS   (3UL << 15)
#define MSTATUS_MPRV (1UL << 17)
#define MSTATUS_SUM  (1UL << 18)
#define MSTATUS_MXR  (1UL << 19)
#define MSTATUS_TVM  (1UL << 20)
#define MSTATUS_TW   (1UL << 21)
#define MSTATUS_TSR  (1UL << 22)
#define MSTATUS_UXL  (3UL << 32)
#define MSTATUS_SXL  (3UL << 34)
#define MSTATUS_SD   (1UL << 63)

/* Exception causes (privileged spec table 3.6). */
enum {
    CAUSE_FETCH_MISALIGNED = 0,
    CAUSE_FETCH_ACCESS = 1,
    CAUSE_ILLEGAL = 2,
    CAUSE_BREAKPOINT = 3,
    CAUSE_LOAD_MISALIGNED = 4,
    CAUSE_LOAD_ACCESS = 5,
    CAUSE_STORE_MISALIGNED = 6,
    CAUSE_STORE_ACCESS = 7,
    CAUSE_ECALL_U = 8,
    CAUSE_ECALL_S = 9,
    CAUSE_ECALL_M = 11,
    CAUSE_FETCH_PAGE = 12,
    CAUSE_LOAD_PAGE = 13,
    CAUSE_STORE_PAGE = 15,
};
#define CAUSE_INTR (1UL << 63)

/* Interrupt bits in mip/mie/sip/sie. */
#define MIP_SSIP (1UL << 1)
#define MIP_MSIP (1UL << 3)
#define MIP_STIP (1UL << 5)
#define MIP_MTIP (1UL << 7)
#define MIP_SEIP (1UL << 9)
#define MIP_MEIP (1UL << 11)

#define csr_read(csr)                                                                              \
    ({                                                                                             \
        unsigned long __v;                                                                         \
        __asm__ volatile("csrr %0, " #csr : "=r"(__v)::"memory");                                  \
        __v;                                                                                       \
    })
#define csr_write(csr, val) __asm__ volatile("csrw " #csr ", %0" ::"rK"(val) : "memory")
#define csr_set(csr, val)   __asm__ volatile("csrs " #csr ", %0" ::"rK"(val) : "memory")
#define csr_clear(csr, val) __asm__ volatile("csrc " #csr ", %0" ::"rK"(val) : "memory")
#define csr_swap(csr, val)                                                                         \
    ({                                                                                             \
        unsigned long __v;                                                                         \
        __asm__ volatile("csrrw %0, " #csr ", %1" : "=r"(__v) : "rK"(val) : "memory");             \
        __v;                                                                                       \
    })

/* Place a function / object in the user region (mapped U=1 by paging tests). */
#define RT_USER      __attribute__((section(".user_text"), noinline))
#define RT_USER_DATA __attribute__((section(".user_data")))

/* Saved state of a trapped context; rt_trap_m/rt_trap_s reload it all. */
struct rt_frame {
    uint64_t x[32]; /* x[0] unused; x[2] is the interrupted sp */
    uint64_t epc;
    uint64_t cause;
    uint64_t tval;
    uint64_t status; /* mstatus or sstatus */
};

/* What the last trap looked like. */
struct rt_trap_record {
    uint64_t cause;
    uint64_t tval;
    uint64_t epc;
    uint64_t status; /* mstatus/sstatus at trap time (after the trap's update) */
    int from_mode;   /* privilege the trap came from */
    int to_mode;     /* RT_M or RT_S: who took it */
};

extern volatile struct rt_trap_record rt_last_trap;
extern volatile unsigned long rt_trap_count;

/*
 * Hooks: called for every trap at that level before the default action; a
 * non-zero return means "handled" (the hook edited the frame as needed).
 */
typedef int (*rt_trap_hook_fn)(struct rt_frame *f);
extern rt_trap_hook_fn rt_mtrap_hook;
extern rt_trap_hook_fn rt_strap_hook;

/* Console */
void rt_putc(char c);
void rt_puts(const char *s); /* no newline added */
int rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rt_vprintf(const char *fmt, va_list ap);

/* Exit through the test device: 0 = pass, anything else = fail(code). */
void rt_exit(int code) __attribute__((noreturn));

/*
 * Self-checks: RT_CHECK prints the failing expression and counts it;
 * rt_check_failures() is returned from main so the exit status reflects it.
 */
#define RT_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rt_check_fail(__FILE__, __LINE__, #cond);                                              \
    } while (0)
void rt_check_fail(const char *file, int line, const char *expr);
int rt_check_failures(void);

/* Traps */
void rt_trap_reset(void); /* rt_trap_count = 0, rt_last_trap cleared */
/* Print "label: cause=.. tval=.. from=X to=Y" or "label: no trap". */
void rt_print_trap(const char *label);
/* Length (2 or 4) of the instruction whose first halfword is insn. */
static inline int rt_insn_len(uint16_t insn)
{
    return (insn & 3) == 3 ? 4 : 2;
}

/*
 * Run fn(arg) in privilege `mode` (RT_S or RT_U) via mret and return its
 * result in M-mode.  The lower mode ends by returning from fn (an ecall with
 * a7 = RT_ECALL_RETURN, forwarded by rt_trap_s when ecalls are delegated).
 * mstatus.MIE and MPRV are restored as they were; satp is left alone.
 */
long rt_run_in_mode(int mode, long (*fn)(long), long arg);

/* ---- paging ------------------------------------------------------------ */
#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_G (1UL << 5)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)

#define SATP_MODE_SV39 8UL
#define SATP_MODE_SV48 9UL

/* Free every page-table page (the pool is a static array). */
void rt_pt_reset(void);
/* A zeroed 4 KiB page from the pool, or a failure exit when it runs out. */
uint64_t *rt_pt_alloc(void);
/*
 * Map va -> pa in the tree rooted at root (levels = 3 for Sv39, 4 for Sv48)
 * with a leaf at level `leaf_level` (0 = 4K, 1 = 2M, 2 = 1G, 3 = 512G) and
 * PTE flags `flags` (V is added).  Misaligned pa is written as given, so
 * tests can build misaligned superpages on purpose.
 */
void rt_pt_map(uint64_t *root, int levels, uint64_t va, uint64_t pa, int leaf_level,
               uint64_t flags);
/* Pointer to the PTE that maps va (leaf or the invalid entry that stops the
 * walk), or 0 if the walk reaches an absent table. */
uint64_t *rt_pt_lookup(uint64_t *root, int levels, uint64_t va);
/* satp value for mode (SATP_MODE_*) with root and ASID 0. */
static inline uint64_t rt_satp(uint64_t mode, uint64_t *root)
{
    return (mode << 60) | ((uint64_t)(uintptr_t)root >> 12);
}
/*
 * Build the usual identity map: devices (0..1G, gigapage, S-only RW), the
 * program's first 2 MiB (S-only RWX), the user region (U RWX) and the rest
 * of the first 1 GiB of RAM as 2M S-only RW pages.  Returns the root.
 */
uint64_t *rt_pt_identity(int levels);

/* ---- timer / CLINT ----------------------------------------------------- */
static inline uint64_t rt_mtime(void)
{
    return *(volatile uint64_t *)RT_CLINT_MTIME;
}
static inline void rt_set_mtimecmp(uint64_t v)
{
    *(volatile uint64_t *)RT_CLINT_MTIMECMP = v;
}
static inline void rt_set_msip(uint32_t v)
{
    *(volatile uint32_t *)RT_CLINT_MSIP = v;
}

/* The other harts park in WFI (mie.MSIE set) until hart 0 stores entry
 * (then sp) here and sends them an IPI (rt_set_msip of their CLINT
 * word): they call entry(hartid) on that stack.  Both 0: parked. */
struct rt_secondary {
    void (*entry)(unsigned long hartid);
    uint64_t sp;
};
extern struct rt_secondary rt_secondary;

/* a0 and a1 at entry (the boot ROM passes hartid and the device tree). */
extern uint64_t rt_boot_a0, rt_boot_a1;

/* Linker symbols */
extern char _user_start[], _user_end[], _ustack_top[], _heap_start[], _end[];

#endif
