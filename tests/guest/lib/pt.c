/*
 * Sv39/Sv48 page tables for the paging tests, built from a static pool of
 * 4 KiB pages in .bss (so their physical addresses are inside the program's
 * S-only 2 MiB region).  See rt.h for the contract.
 */
#include "rt.h"

#define PT_POOL_PAGES 64

static uint64_t pt_pool[PT_POOL_PAGES][512] __attribute__((aligned(4096)));
static unsigned pt_used;

void rt_pt_reset(void)
{
    pt_used = 0;
}

uint64_t *rt_pt_alloc(void)
{
    if (pt_used >= PT_POOL_PAGES) {
        rt_puts("rt_pt_alloc: pool exhausted\n");
        rt_exit(99);
    }
    uint64_t *p = pt_pool[pt_used++];
    for (int i = 0; i < 512; i++)
        p[i] = 0;
    return p;
}

static unsigned vpn(uint64_t va, int level)
{
    return (unsigned)((va >> (12 + 9 * level)) & 511);
}

static uint64_t *pte_table(uint64_t pte)
{
    return (uint64_t *)(uintptr_t)((pte >> 10) << 12);
}

void rt_pt_map(uint64_t *root, int levels, uint64_t va, uint64_t pa, int leaf_level, uint64_t flags)
{
    uint64_t *t = root;
    for (int lvl = levels - 1; lvl > leaf_level; lvl--) {
        uint64_t *e = &t[vpn(va, lvl)];
        if (!(*e & PTE_V)) {
            uint64_t *n = rt_pt_alloc();
            *e = (((uint64_t)(uintptr_t)n >> 12) << 10) | PTE_V;
        } else if (*e & (PTE_R | PTE_W | PTE_X)) {
            rt_printf("rt_pt_map: %lx already mapped by a leaf at level %d\n", (unsigned long)va,
                      lvl);
            rt_exit(98);
        }
        t = pte_table(*e);
    }
    t[vpn(va, leaf_level)] = ((pa >> 12) << 10) | flags | PTE_V;
    __asm__ volatile("sfence.vma" ::: "memory");
}

uint64_t *rt_pt_lookup(uint64_t *root, int levels, uint64_t va)
{
    uint64_t *t = root;
    for (int lvl = levels - 1; lvl >= 0; lvl--) {
        uint64_t *e = &t[vpn(va, lvl)];
        if (!(*e & PTE_V) || (*e & (PTE_R | PTE_W | PTE_X)) || lvl == 0)
            return e;
        t = pte_table(*e);
    }
    return 0;
}

uint64_t *rt_pt_identity(int levels)
{
    uint64_t *root = rt_pt_alloc();
    const uint64_t ad = PTE_A | PTE_D;
    /* Devices: UART, CLINT, test device... all below 1 GiB. */
    rt_pt_map(root, levels, 0, 0, 2, PTE_R | PTE_W | ad);
    rt_pt_map(root, levels, 0x80000000UL, 0x80000000UL, 1, PTE_R | PTE_W | PTE_X | ad);
    rt_pt_map(root, levels, (uintptr_t)_user_start, (uintptr_t)_user_start, 1,
              PTE_R | PTE_W | PTE_X | PTE_U | ad);
    for (uint64_t a = (uintptr_t)_user_start + 0x200000; a < 0x88000000UL; a += 0x200000)
        rt_pt_map(root, levels, a, a, 1, PTE_R | PTE_W | ad);
    return root;
}
