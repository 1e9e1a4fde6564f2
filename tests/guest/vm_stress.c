/*
 * Software-TLB stress under Sv39: 256 virtual pages mapped onto 48 physical
 * pages (with aliases, read-only and unmapped pages), S-mode runs batches of
 * random loads and stores through them, and M-mode remaps pages between
 * batches (PTE rewrites followed by sfence.vma of the page or of
 * everything, and satp switches between two roots).  M keeps a shadow model
 * of memory and of the expected faults, so the guest checks itself; it
 * prints per-batch checksums and fault counts for the comparison with QEMU.
 */
#include "rt.h"

#define NPHYS 48
#define NVIRT 256
#define NOPS  2048
#define VBASE 0x40000000UL

static uint64_t phys[NPHYS][512] __attribute__((aligned(4096)));
static uint64_t shadow[NPHYS][512];

/* map[i]: physical page index or -1; perm: 1 = R, 3 = RW */
static int map[NVIRT];
static int perm[NVIRT];

struct op {
    uint64_t va;
    uint64_t val; /* store value, or 0 for a load */
};
static struct op ops[NOPS];

static uint64_t rng = 0x9e3779b97f4a7c15UL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t *root_a, *root_b, *cur_root;

static void set_pte(uint64_t *root, int i)
{
    uint64_t *pte = rt_pt_lookup(root, 3, VBASE + (uint64_t)i * 4096);
    if (map[i] < 0)
        *pte = 0;
    else
        *pte = (((uintptr_t)phys[map[i]] >> 12) << 10) | PTE_V | PTE_A | PTE_D |
               (perm[i] == 3 ? PTE_R | PTE_W : PTE_R);
}

static void random_mapping(int i)
{
    unsigned r = (unsigned)(rnd() % 10);
    map[i] = r == 0 ? -1 : (int)(rnd() % NPHYS);
    perm[i] = r == 1 ? 1 : 3;
}

/* S-mode: run the ops, return a checksum of the loaded values. */
static long s_run(long n)
{
    uint64_t sum = 0;
    for (long i = 0; i < n; i++) {
        uint64_t va = ops[i].va;
        if (ops[i].val) {
            __asm__ volatile("sd %1, 0(%0)" ::"r"(va), "r"(ops[i].val) : "memory");
        } else {
            uint64_t v = 0;
            __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(va) : "memory");
            sum = sum * 31 + v;
        }
    }
    return (long)sum;
}

int main(void)
{
    for (int p = 0; p < NPHYS; p++)
        for (int w = 0; w < 512; w++)
            phys[p][w] = shadow[p][w] = ((uint64_t)p << 32) | (uint64_t)w;

    rt_pt_reset();
    root_a = rt_pt_identity(3);
    root_b = rt_pt_identity(3);
    for (int i = 0; i < NVIRT; i++) {
        random_mapping(i);
        /* make sure the level-0 table exists in both trees */
        rt_pt_map(root_a, 3, VBASE + (uint64_t)i * 4096, 0, 0, 0);
        rt_pt_map(root_b, 3, VBASE + (uint64_t)i * 4096, 0, 0, 0);
        set_pte(root_a, i);
        set_pte(root_b, i);
    }
    cur_root = root_a;
    csr_write(satp, rt_satp(SATP_MODE_SV39, cur_root));
    __asm__ volatile("sfence.vma" ::: "memory");

    int bad = 0;
    for (int batch = 0; batch < 12; batch++) {
        /* The ops: mostly a hot set of pages, some anywhere. */
        int hot = (int)(rnd() % (NVIRT - 16));
        uint64_t expect_sum = 0;
        unsigned long expect_faults = 0;
        for (int k = 0; k < NOPS; k++) {
            int i = (rnd() % 4) ? hot + (int)(rnd() % 16) : (int)(rnd() % NVIRT);
            int w = (int)(rnd() % 512);
            int store = (rnd() % 3) == 0;
            ops[k].va = VBASE + (uint64_t)i * 4096 + (uint64_t)w * 8;
            ops[k].val = store ? (rnd() | 1) : 0;
            /* model */
            if (map[i] < 0 || (store && perm[i] != 3)) {
                expect_faults++;
                if (!store)
                    expect_sum = expect_sum * 31;
            } else if (store) {
                shadow[map[i]][w] = ops[k].val;
            } else {
                expect_sum = expect_sum * 31 + shadow[map[i]][w];
            }
        }
        rt_trap_reset();
        uint64_t sum = (uint64_t)rt_run_in_mode(RT_S, s_run, NOPS);
        unsigned long faults = rt_trap_count;
        int mem_ok = 1;
        for (int p = 0; p < NPHYS; p++)
            for (int w = 0; w < 512; w++)
                mem_ok &= phys[p][w] == shadow[p][w];
        rt_printf("batch %2d: hot %3d sum %016lx faults %4lu %s %s mem %s\n", batch, hot,
                  (unsigned long)sum, faults, sum == expect_sum ? "sum-ok" : "SUM-BAD",
                  faults == expect_faults ? "faults-ok" : "FAULTS-BAD", mem_ok ? "ok" : "BAD");
        bad += sum != expect_sum || faults != expect_faults || !mem_ok;

        /* Remap a few pages, in the hot set and elsewhere. */
        int how = batch % 3;
        for (int n = 0; n < 24; n++) {
            int i = (n & 1) ? hot + (int)(rnd() % 16) : (int)(rnd() % NVIRT);
            random_mapping(i);
            set_pte(root_a, i);
            set_pte(root_b, i);
            if (how == 0)
                __asm__ volatile("sfence.vma %0, zero" ::"r"(VBASE + (uint64_t)i * 4096)
                                 : "memory");
        }
        if (how == 1)
            __asm__ volatile("sfence.vma" ::: "memory");
        if (how == 2) {
            cur_root = cur_root == root_a ? root_b : root_a;
            csr_write(satp, rt_satp(SATP_MODE_SV39, cur_root));
            __asm__ volatile("sfence.vma" ::: "memory");
        }
    }
    csr_write(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    rt_printf("batches with errors: %d\n", bad);
    RT_CHECK(bad == 0);
    return rt_check_failures();
}
