/*
 * RV64C: every compressed instruction, written with explicit c.* mnemonics
 * in assembly functions (so the encodings are guaranteed compressed), with
 * immediates at their range limits: c.addi4spn, c.fld, c.lw, c.ld, c.fsd,
 * c.sw, c.sd, c.nop, c.addi, c.addiw, c.li, c.addi16sp, c.lui, c.srli,
 * c.srai, c.andi, c.sub, c.xor, c.or, c.and, c.subw, c.addw, c.j, c.beqz,
 * c.bnez, c.slli, c.fldsp, c.lwsp, c.ldsp, c.jr, c.mv, c.ebreak, c.jalr,
 * c.add, c.fsdsp, c.swsp, c.sdsp, plus a few HINT encodings (no-ops).
 * Reserved compressed encodings are exercised in traps.c.
 */
#include "rt.h"

void rvc_q0(uint64_t *out, uint64_t *mem);
void rvc_q1(uint64_t *out, uint64_t in);
void rvc_branches(uint64_t *out, uint64_t in);
void rvc_q2(uint64_t *out, uint64_t in);
void rvc_jumps(uint64_t *out);
void rvc_hints(uint64_t *out);

/* a0 = out, a1 = mem (256 bytes) */
__asm__(".text\n"
        ".globl rvc_q0\n"
        "rvc_q0:\n"
        "  c.addi4spn a2, sp, 4\n"
        "  sub a2, a2, sp\n"
        "  c.sd a2, 0(a0)\n"
        "  c.addi4spn a3, sp, 1020\n"
        "  sub a3, a3, sp\n"
        "  c.sd a3, 8(a0)\n"
        "  c.lw a2, 0(a1)\n"
        "  c.sd a2, 16(a0)\n"
        "  c.lw a2, 124(a1)\n"
        "  c.sd a2, 24(a0)\n"
        "  c.ld a3, 0(a1)\n"
        "  c.sd a3, 32(a0)\n"
        "  c.ld a3, 248(a1)\n"
        "  c.sd a3, 40(a0)\n"
        "  c.fld fa0, 8(a1)\n"
        "  fmv.x.d a4, fa0\n"
        "  c.sd a4, 48(a0)\n"
        "  c.fsd fa0, 240(a1)\n" /* mem[30] = mem[1] */
        "  li a5, -2\n"
        "  c.sw a5, 4(a1)\n"   /* high half of mem[0] */
        "  c.sw a5, 120(a1)\n" /* low half of mem[15] */
        "  c.sd a5, 16(a1)\n"  /* mem[2] */
        "  c.sd a5, 232(a1)\n" /* mem[29] */
        "  ret\n");

/* a0 = out, a1 = in */
__asm__(".text\n"
        ".globl rvc_q1\n"
        "rvc_q1:\n"
        "  c.nop\n"
        "  mv a2, a1\n"
        "  c.addi a2, 31\n"
        "  c.sd a2, 0(a0)\n"
        "  mv a2, a1\n"
        "  c.addi a2, -32\n"
        "  c.sd a2, 8(a0)\n"
        "  mv a3, a1\n"
        "  c.addiw a3, 1\n"
        "  c.sd a3, 16(a0)\n"
        "  mv a3, a1\n"
        "  c.addiw a3, 0\n" /* sext.w */
        "  c.sd a3, 24(a0)\n"
        "  c.li a4, 31\n"
        "  c.sd a4, 32(a0)\n"
        "  c.li a4, -32\n"
        "  c.sd a4, 40(a0)\n"
        "  c.lui a5, 1\n"
        "  c.sd a5, 48(a0)\n"
        "  c.lui a5, 31\n"
        "  c.sd a5, 56(a0)\n"
        "  c.lui a5, 0xfffe0\n"
        "  c.sd a5, 64(a0)\n"
        "  c.lui a5, 0xfffff\n"
        "  c.sd a5, 72(a0)\n"
        "  mv a2, sp\n"
        "  c.addi16sp sp, -512\n"
        "  sub a3, a2, sp\n"
        "  c.addi16sp sp, 496\n"
        "  c.addi16sp sp, 16\n"
        "  sub a4, a2, sp\n"
        "  c.sd a3, 80(a0)\n"
        "  c.sd a4, 88(a0)\n"
        "  mv a2, a1\n"
        "  c.srli a2, 1\n"
        "  c.sd a2, 96(a0)\n"
        "  mv a2, a1\n"
        "  c.srli a2, 63\n"
        "  c.sd a2, 104(a0)\n"
        "  mv a2, a1\n"
        "  c.srai a2, 1\n"
        "  c.sd a2, 112(a0)\n"
        "  mv a2, a1\n"
        "  c.srai a2, 63\n"
        "  c.sd a2, 120(a0)\n"
        "  mv a2, a1\n"
        "  c.andi a2, -32\n"
        "  c.sd a2, 128(a0)\n"
        "  mv a2, a1\n"
        "  c.andi a2, 31\n"
        "  c.sd a2, 136(a0)\n"
        "  li a3, 0x0f0f0f0f0f0f0f0f\n"
        "  mv a2, a1\n"
        "  c.sub a2, a3\n"
        "  c.sd a2, 144(a0)\n"
        "  mv a2, a1\n"
        "  c.xor a2, a3\n"
        "  c.sd a2, 152(a0)\n"
        "  mv a2, a1\n"
        "  c.or a2, a3\n"
        "  c.sd a2, 160(a0)\n"
        "  mv a2, a1\n"
        "  c.and a2, a3\n"
        "  c.sd a2, 168(a0)\n"
        "  mv a2, a1\n"
        "  c.subw a2, a3\n"
        "  c.sd a2, 176(a0)\n"
        "  mv a2, a1\n"
        "  c.addw a2, a3\n"
        "  c.sd a2, 184(a0)\n"
        "  ret\n");

/* a0 = out, a1 = in: each slot gets 1 if the branch was taken */
__asm__(".text\n"
        ".globl rvc_branches\n"
        "rvc_branches:\n"
        "  mv a2, a1\n"
        "  li a3, 0\n"
        "  c.beqz a2, 1f\n"
        "  li a3, 1\n"
        "1: xori a3, a3, 1\n"
        "  c.sd a3, 0(a0)\n"
        "  li a3, 0\n"
        "  c.bnez a2, 1f\n"
        "  li a3, 1\n"
        "1: xori a3, a3, 1\n"
        "  c.sd a3, 8(a0)\n"
        /* backward c.beqz / c.bnez */
        "  li a3, 0\n"
        "  c.j 2f\n"
        "1: li a3, 1\n"
        "  c.j 3f\n"
        "2: c.beqz a2, 1b\n"
        "3: c.sd a3, 16(a0)\n"
        "  li a3, 0\n"
        "  c.j 2f\n"
        "1: li a3, 1\n"
        "  c.j 3f\n"
        "2: c.bnez a2, 1b\n"
        "3: c.sd a3, 24(a0)\n"
        /* a c.bnez count-down loop */
        "  li a4, 0\n"
        "  li a5, 10\n"
        "1: c.addi a4, 3\n"
        "  c.addi a5, -1\n"
        "  c.bnez a5, 1b\n"
        "  c.sd a4, 32(a0)\n"
        "  ret\n");

/* a0 = out, a1 = in: stack-relative loads/stores, shifts, mv, add */
__asm__(".text\n"
        ".globl rvc_q2\n"
        "rvc_q2:\n"
        "  addi sp, sp, -512\n"
        "  mv a2, a1\n"
        "  c.slli a2, 1\n"
        "  sd a2, 0(a0)\n"
        "  mv a2, a1\n"
        "  c.slli a2, 63\n"
        "  sd a2, 8(a0)\n"
        "  li t0, 0x8877665544332211\n"
        "  c.sdsp t0, 504(sp)\n"
        "  c.sdsp t0, 0(sp)\n"
        "  c.swsp a1, 252(sp)\n"
        "  c.swsp a1, 8(sp)\n"
        "  c.ldsp t1, 504(sp)\n"
        "  sd t1, 16(a0)\n"
        "  c.lwsp t2, 252(sp)\n"
        "  sd t2, 24(a0)\n"
        "  c.lwsp t2, 4(sp)\n" /* high half of the 0(sp) doubleword */
        "  sd t2, 32(a0)\n"
        "  c.ldsp t1, 8(sp)\n"
        "  sd t1, 40(a0)\n"
        "  c.fldsp ft0, 0(sp)\n"
        "  c.fsdsp ft0, 496(sp)\n"
        "  c.fldsp ft1, 496(sp)\n"
        "  fmv.x.d t1, ft1\n"
        "  sd t1, 48(a0)\n"
        "  c.mv t3, a1\n"
        "  sd t3, 56(a0)\n"
        "  li t4, 0x100000001\n"
        "  c.add t4, a1\n"
        "  sd t4, 64(a0)\n"
        "  addi sp, sp, 512\n"
        "  ret\n");

/* a0 = out: c.j, c.jr, c.jalr link values (ra = pc + 2) */
__asm__(".text\n"
        ".globl rvc_jumps\n"
        "rvc_jumps:\n"
        "  mv t6, ra\n"
        "  li a2, 0\n"
        "  c.j 1f\n"
        "  li a2, 1\n"
        "1: sd a2, 0(a0)\n"
        "  lla a3, 2f\n"
        "  li a2, 0\n"
        "  c.jr a3\n"
        "  li a2, 1\n"
        "2: sd a2, 8(a0)\n"
        "  lla a3, 3f\n"
        "  li a2, 0\n"
        "4: c.jalr a3\n"
        "  li a2, 1\n"
        "3: lla a4, 4b\n"
        "  sub a4, ra, a4\n" /* 2 */
        "  sd a4, 16(a0)\n"
        "  sd a2, 24(a0)\n"
        /* c.jalr with rs1 == ra: target from the old ra */
        "  lla ra, 5f\n"
        "6: c.jalr ra\n"
        "5: lla a4, 6b\n"
        "  sub a4, ra, a4\n"
        "  sd a4, 32(a0)\n"
        "  mv ra, t6\n"
        "  ret\n");

/* a0 = out: HINT encodings must behave as no-ops */
__asm__(".text\n"
        ".globl rvc_hints\n"
        "rvc_hints:\n"
        "  li a2, 5\n"
        "  .hword 0x0005\n" /* c.nop 1 */
        "  .hword 0x4015\n" /* c.li x0, 5 */
        "  .hword 0x0001\n" /* c.nop (plain) */
        "  .hword 0x802a\n" /* c.mv x0, a0 */
        "  .hword 0x902a\n" /* c.add x0, a0 */
        "  .hword 0x6005\n" /* c.lui x0, 1 */
        "  .hword 0x0015\n" /* c.addi x0, 5 */
        "  sd a2, 0(a0)\n"
        "  ret\n");

static uint64_t mem[32] __attribute__((aligned(16)));

static void print_out(const char *what, const uint64_t *out, int n)
{
    rt_printf("%s:", what);
    for (int i = 0; i < n; i++)
        rt_printf(" %lx", out[i]);
    rt_printf("\n");
}

int main(void)
{
    uint64_t out[32];
    for (int i = 0; i < 32; i++)
        mem[i] = 0x0101010101010101UL * (uint64_t)(i + 1) ^ 0x8000000080000000UL;
    for (int i = 0; i < 32; i++)
        out[i] = 0;
    rvc_q0(out, mem);
    print_out("q0 results", out, 7);
    print_out("q0 memory", mem, 32);
    RT_CHECK(out[0] == 4 && out[1] == 1020);
    RT_CHECK(mem[30] == mem[1]);

    static const uint64_t ins[] = {
        0, 1, 0x7fffffff, 0x80000000, 0xffffffffffffffff, 0x8000000000000001, 0x123456789abcdef0};
    for (unsigned i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        rvc_q1(out, ins[i]);
        rt_printf("q1 in=%lx", ins[i]);
        print_out("", out, 24);
        rvc_branches(out, ins[i]);
        rt_printf("branches in=%lx", ins[i]);
        print_out("", out, 5);
        rvc_q2(out, ins[i]);
        rt_printf("q2 in=%lx", ins[i]);
        print_out("", out, 9);
    }
    rvc_q1(out, 0x7fffffff);
    RT_CHECK(out[2] == 0xffffffff80000000); /* c.addiw wraps */
    RT_CHECK(out[6] == 0x1000 && out[8] == 0xfffffffffffe0000);
    RT_CHECK(out[10] == 512 && out[11] == 0);

    rvc_jumps(out);
    print_out("jumps", out, 5);
    RT_CHECK(out[0] == 0 && out[1] == 0 && out[2] == 2 && out[3] == 0 && out[4] == 2);

    rvc_hints(out);
    print_out("hints", out, 1);

    uint64_t pc;
    rt_trap_reset();
    __asm__ volatile("1: c.ebreak\n\tlla %0, 1b" : "=r"(pc));
    rt_print_trap("c.ebreak");
    rt_printf("c.ebreak epc-pc=%lx\n", rt_last_trap.epc - pc);
    RT_CHECK(rt_last_trap.cause == CAUSE_BREAKPOINT && rt_last_trap.epc == pc);
    return rt_check_failures();
}
