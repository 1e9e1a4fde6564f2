/*
 * Unit tests for the state sections (docs/state.md) of every component:
 * hart, CLINT, PLIC, UART, goldfish RTC, PCIe host, virtio core and
 * transport, virtio-rng, virtio-blk, virtio-net.
 *
 * For each: a round trip (non-trivial state saved, loaded into a fresh
 * instance, saved again: the same bytes), behaviour after the load (the
 * machine goes on as the original would), and refusals: every truncation,
 * a version from the future, and each validated field with a bad value,
 * each leaving the target exactly as it was (its own save unchanged).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/clint.h"
#include "devices/goldfish_rtc.h"
#include "devices/pcie_host.h"
#include "devices/plic.h"
#include "devices/uart16550.h"
#include "hart_test.h"
#include "net/net.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_rng.h"
#include "virtq_driver.h"

/* ---- generic save/load checks ------------------------------------------------ */

/* One component behind a uniform face (each test supplies two wrappers). */
struct comp {
    const char *name;
    void *obj;
    void (*save)(void *obj, struct state_buf *b);
    int (*load)(void *obj, struct state_buf *b, unsigned version);
    unsigned version;
};

static void comp_save(const struct comp *c, struct state_buf *b)
{
    state_buf_init(b);
    c->save(c->obj, b);
    if (state_buf_error(b))
        abort();
}

static bool same(const struct state_buf *a, const struct state_buf *b)
{
    return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

/* Load len bytes at p; 0 only if the load succeeded and used them all. */
static int comp_load(const struct comp *c, const void *p, size_t len, unsigned version, char *why,
                     size_t whylen)
{
    struct state_buf r;
    int ret;

    state_buf_reader(&r, p, len);
    ret = c->load(c->obj, &r, version);
    if (ret == 0)
        ret = state_buf_expect_end(&r, c->name);
    snprintf(why, whylen, "%s", state_buf_msg(&r));
    if (ret && !state_buf_error(&r))
        return -1000; /* failed without saying why */
    return ret;
}

/* A load of p/len must fail with a reason and leave c as it was. */
static bool comp_refuses(const struct comp *c, const void *p, size_t len, unsigned version,
                         char *why, size_t whylen)
{
    struct state_buf before, after;
    int ret;
    bool ok;

    comp_save(c, &before);
    ret = comp_load(c, p, len, version, why, whylen);
    comp_save(c, &after);
    ok = ret < 0 && ret != -1000 && why[0] && same(&before, &after);
    state_buf_fini(&before);
    state_buf_fini(&after);
    return ok;
}

/* Round trip src -> dst; returns the bytes of src in out (caller frees). */
static void comp_roundtrip(const struct comp *src, const struct comp *dst, struct state_buf *out)
{
    struct state_buf again;
    char why[200];
    int ret;

    comp_save(src, out);
    ret = comp_load(dst, out->data, out->len, src->version, why, sizeof(why));
    CHECK(ret == 0, "%s: state of %zu bytes loads (%s)", src->name, out->len, why);
    comp_save(dst, &again);
    CHECK(same(out, &again), "%s: saved again, the same bytes", src->name);
    state_buf_fini(&again);
}

/* Every proper prefix and a future version are refused, c untouched. */
static void comp_refuse_common(const struct comp *c, const struct state_buf *good)
{
    char why[200] = "";
    bool all = true;

    for (size_t n = 0; n < good->len && all; n++) {
        if (!comp_refuses(c, good->data, n, c->version, why, sizeof(why))) {
            all = false;
            printf("     truncated to %zu bytes was accepted or changed the state\n", n);
        }
    }
    CHECK(all, "%s: every truncation (0..%zu bytes) refused, state untouched (%s)", c->name,
          good->len - 1, why);
    CHECK(comp_refuses(c, good->data, good->len, c->version + 1, why, sizeof(why)),
          "%s: version %u refused (%s)", c->name, c->version + 1, why);
    CHECK(comp_refuses(c, good->data, good->len, 0, why, sizeof(why)), "%s: version 0 refused",
          c->name);
}

/* good with `width` bytes at off replaced by val (little-endian) must be
 * refused and leave c untouched. */
static void comp_refuse_patch(const struct comp *c, const struct state_buf *good, size_t off,
                              unsigned width, uint64_t val, const char *what)
{
    uint8_t *p = malloc(good->len);
    char why[200] = "";

    if (!p || off + width > good->len)
        abort();
    memcpy(p, good->data, good->len);
    for (unsigned i = 0; i < width; i++)
        p[off + i] = (uint8_t)(val >> (8 * i));
    CHECK(comp_refuses(c, p, good->len, c->version, why, sizeof(why)), "%s: %s refused (%s)",
          c->name, what, why);
    free(p);
}

/* ---- hart ------------------------------------------------------------------- */

static void hart_save_w(void *o, struct state_buf *b)
{
    rv_hart_save(o, b);
}

static int hart_load_w(void *o, struct state_buf *b, unsigned v)
{
    return rv_hart_load(o, b, v);
}

/* Byte offsets in the version 1 hart section (see state.c's layout). */
enum {
    HS_HARTID = 0,
    HS_PC = 8 + 31 * 8,
    HS_FFLAGS = HS_PC + 8 + 32 * 8,
    HS_FRM = HS_FFLAGS + 4,
    HS_PRIV = HS_FRM + 4,
    HS_MSTATUS = HS_PRIV + 1,
    HS_MISA = HS_MSTATUS + 8,
    HS_MEDELEG = HS_MISA + 8,
    HS_MIDELEG = HS_MEDELEG + 8,
    HS_MIE = HS_MIDELEG + 8,
    HS_MIP_SW = HS_MIE + 8,
    HS_MIP_HW = HS_MIP_SW + 8,
    HS_MTVEC = HS_MIP_HW + 8,
    HS_MEPC = HS_MTVEC + 8 * 4,
    HS_MENVCFG = HS_MEPC + 8 * 9,
    HS_SATP = HS_MENVCFG + 16,
    HS_PMP_N = HS_SATP + 8 * 6,
    HS_END = HS_PMP_N + 1 + 16 * 9 + 16,
};

/* A program that keeps every kind of state moving: integer ALU, a store
 * and load, CSRs, FP, LR/SC, in an endless loop. */
static void hart_program(struct ht *t)
{
    uint64_t loop;

    li(t, 1, 0x0123456789abcdefull);
    li(t, 2, 3);
    li(t, 10, HT_RAM + 0x8000); /* data */
    li(t, 5, 1ull << 13);       /* mstatus.FS = initial */
    emit(t, CSRRS(0, C_MSTATUS, 5));
    li(t, 5, 0x0ff0);
    emit(t, CSRW(C_MEDELEG, 5));
    loop = t->pc;
    emit(t, ADD(3, 3, 1));
    emit(t, MUL(4, 3, 2));
    emit(t, SD(4, 10, 0));
    emit(t, LD(6, 10, 0));
    emit(t, ADDI(7, 7, 1));
    emit(t, CSRRW(8, C_MSCRATCH, 7));
    emit(t, FCVT_D_L(1, 7));
    emit(t, FADD_D(2, 2, 1, 0));
    emit(t, LR_D(9, 10));
    emit(t, ADDI(9, 9, 5));
    emit(t, SC_D(11, 10, 9));
    emit(t, JAL(0, (int32_t)(loop - t->pc)));
}

static void test_hart(void)
{
    struct ht a, b, c;
    struct comp ca = {"hart", NULL, hart_save_w, hart_load_w, RV_HART_STATE_VERSION};
    struct comp cb, cc;
    struct state_buf good, sa, sb;
    bool regs = true;
    uint64_t saved_instret;

    ht_init(&a);
    ht_init(&b);
    hart_program(&a);
    ht_pmp_open(&a);
    a.h->pmpaddr[3] = 0x1234;
    a.h->pmpcfg[3] = 0x0b; /* TOR, R W */
    rv_pmp_changed(a.h);
    rv_hart_run(a.h, 1000);
    CHECK(a.h->x[7] > 10 && a.h->f[2] != 0, "the program ran (x7=%" PRIu64 ")", a.h->x[7]);
    ca.obj = a.h;
    saved_instret = a.h->instret;
    cb = ca;
    cb.obj = b.h;
    memcpy(b.mem->host, a.mem->host, HT_RAM_SIZE); /* RAM travels separately */
    comp_roundtrip(&ca, &cb, &good);
    CHECK(good.len == HS_END, "hart section: %zu bytes", good.len);
    CHECK_EQ(b.h->pmp_on, a.h->pmp_on, "PMP ranges recomputed on load");
    CHECK_EQ(b.h->pmp_hi[3], a.h->pmp_hi[3], "PMP TOR bound recomputed");

    /* Both go on for the same number of instructions: same state. */
    rv_hart_run(a.h, 5000);
    rv_hart_run(b.h, 5000);
    for (unsigned i = 1; i < 32; i++)
        regs = regs && a.h->x[i] == b.h->x[i] && a.h->f[i] == b.h->f[i];
    CHECK(regs, "after 5000 more instructions: every x and f register equal");
    CHECK(a.h->pc == b.h->pc && a.h->instret == b.h->instret && a.h->mscratch == b.h->mscratch,
          "pc 0x%" PRIx64 "/0x%" PRIx64 ", instret %" PRIu64 "/%" PRIu64, a.h->pc, b.h->pc,
          a.h->instret, b.h->instret);
    comp_save(&ca, &sa);
    comp_save(&cb, &sb);
    CHECK(same(&sa, &sb), "and their saved states are byte for byte equal");
    CHECK(!memcmp(a.mem->host, b.mem->host, HT_RAM_SIZE), "and their RAM");
    state_buf_fini(&sa);
    state_buf_fini(&sb);

    /* A loaded hart runs the new state, not a cached translation of its
     * old one: load the early state into a hart that ran on. */
    CHECK(comp_load(&cb, good.data, good.len, 1, (char[200]){0}, 200) == 0,
          "load over a running hart");
    CHECK_EQ(b.h->instret, saved_instret, "it is back at the saved instret");

    /* Refusals, with a hart whose state differs from the section. */
    ht_init(&c);
    cc = ca;
    cc.obj = c.h;
    c.h->x[5] = 55;
    comp_refuse_common(&cc, &good);
    comp_refuse_patch(&cc, &good, HS_HARTID, 8, 1, "another hart's state");
    comp_refuse_patch(&cc, &good, HS_PRIV, 1, 2, "privilege 2");
    comp_refuse_patch(&cc, &good, HS_PRIV, 1, 7, "privilege 7");
    comp_refuse_patch(&cc, &good, HS_MISA, 8, c.h->misa | 0x80, "another misa (H)");
    comp_refuse_patch(&cc, &good, HS_SATP + 7, 1, 0x50, "satp mode 5");
    comp_refuse_patch(&cc, &good, HS_PMP_N, 1, 8, "8 PMP entries on a 16-entry hart");
    comp_refuse_patch(&cc, &good, HS_PMP_N, 1, 17, "17 PMP entries");
    comp_refuse_patch(&cc, &good, HS_PC, 8, HT_RAM + 1, "odd pc");
    comp_refuse_patch(&cc, &good, HS_MSTATUS, 8, (2ull << 34) | (2ull << 32) | (2ull << 11),
                      "mstatus.MPP = 2");
    comp_refuse_patch(&cc, &good, HS_MSTATUS + 4, 1, 0, "mstatus.SXL = UXL = 0");
    comp_refuse_patch(&cc, &good, HS_MEDELEG, 8, 1ull << 40, "medeleg beyond its mask");
    comp_refuse_patch(&cc, &good, HS_MIDELEG, 8, 1ull << 11, "mideleg of MEI");
    comp_refuse_patch(&cc, &good, HS_MIE, 8, 1ull << 20, "mie beyond its mask");
    comp_refuse_patch(&cc, &good, HS_MIP_SW, 8, 1ull << 7, "software MTIP");
    comp_refuse_patch(&cc, &good, HS_MIP_HW, 8, 1ull << 2, "an interrupt line that does not exist");
    comp_refuse_patch(&cc, &good, HS_MTVEC, 8, HT_TRAP | 2, "mtvec reserved mode");
    comp_refuse_patch(&cc, &good, HS_MEPC, 8, HT_RAM + 1, "odd mepc");
    comp_refuse_patch(&cc, &good, HS_MENVCFG, 8, 1ull << 40, "menvcfg beyond its mask");
    comp_refuse_patch(&cc, &good, HS_FFLAGS, 4, 0x20, "fflags 0x20");
    comp_refuse_patch(&cc, &good, HS_FRM, 4, 8, "frm 8");
    CHECK_EQ(c.h->x[5], 55, "the refused hart kept its registers");
    state_buf_fini(&good);
    ht_fini(&a);
    ht_fini(&b);
    ht_fini(&c);
}

/* ---- CLINT ------------------------------------------------------------------ */

struct fake_clock {
    uint64_t now;
    unsigned irqs; /* set_irq calls */
    bool line[4][16];
};

static uint64_t fake_now(void *o)
{
    return ((struct fake_clock *)o)->now;
}

static void fake_clint_irq(void *o, unsigned hart, unsigned irq, bool level)
{
    struct fake_clock *f = o;
    f->line[hart][irq] = level;
    f->irqs++;
}

static void clint_save_w(void *o, struct state_buf *b)
{
    clint_save(o, b);
}

static int clint_load_w(void *o, struct state_buf *b, unsigned v)
{
    return clint_load(o, b, v);
}

static void test_clint(void)
{
    struct fake_clock fa = {.now = 7000000000ull}, fb = {.now = 100};
    struct clint_host ha = {&fa, fake_now, fake_clint_irq}, hb = {&fb, fake_now, fake_clint_irq};
    struct clint *a = clint_new(&ha, 2), *b = clint_new(&hb, 2), *c3 = clint_new(&hb, 3);
    struct comp ca = {"clint", a, clint_save_w, clint_load_w, CLINT_STATE_VERSION}, cb, c3c;
    struct state_buf good;
    uint64_t mt;

    if (!a || !b || !c3)
        abort();
    clint_set_mtime(a, 123456789);
    (void)clint_mtimer_ops.write(a, 0, 8, 123456789 + 50); /* hart 0 mtimecmp: 5 us away */
    (void)clint_mtimer_ops.write(a, 8, 8, 1);              /* hart 1: due */
    (void)clint_msip_ops.write(a, 4, 4, 1);                /* hart 1 msip */
    fa.now += 1000;                                        /* 10 ticks later */
    mt = clint_mtime(a);
    cb = ca;
    cb.obj = b;
    fb.irqs = 0;
    comp_roundtrip(&ca, &cb, &good);
    CHECK_EQ(clint_mtime(b), mt, "mtime continues from the saved value on another clock");
    CHECK(fb.irqs >= 4 && !fb.line[0][RV_IRQ_MTI] && fb.line[1][RV_IRQ_MTI] &&
              fb.line[1][RV_IRQ_MSI] && !fb.line[0][RV_IRQ_MSI],
          "every line sent again: MTIP1, MSIP1 high, hart 0 low (%u sends)", fb.irqs);
    fb.now += 100000; /* 1000 ticks: hart 0's mtimecmp passes */
    CHECK_EQ(clint_mtime(b), mt + 1000, "mtime counts on after the load");
    clint_update(b);
    CHECK(fb.line[0][RV_IRQ_MTI], "hart 0's timer fires on the loaded clock");
    fb.now -= 100000;
    clint_update(b);

    c3c = ca;
    c3c.obj = c3;
    cb.name = "clint";
    comp_refuse_common(&cb, &good);
    comp_refuse_patch(&cb, &good, 20, 4, 2, "msip 2");
    {
        char why[200];
        CHECK(comp_refuses(&c3c, good.data, good.len, 1, why, sizeof(why)),
              "clint: 2-hart state into a 3-hart CLINT refused (%s)", why);
    }
    state_buf_fini(&good);
    clint_free(a);
    clint_free(b);
    clint_free(c3);
}

/* ---- PLIC ------------------------------------------------------------------- */

static void fake_plic_irq(void *o, unsigned ctx, bool level)
{
    struct fake_clock *f = o;
    f->line[ctx / 16][ctx % 16] = level;
    f->irqs++;
}

static void plic_save_w(void *o, struct state_buf *b)
{
    plic_save(o, b);
}

static int plic_load_w(void *o, struct state_buf *b, unsigned v)
{
    return plic_load(o, b, v);
}

static uint64_t plic_rd(struct plic *p, uint64_t off)
{
    uint64_t v = 0;
    (void)plic_ops.read(p, off, 4, &v);
    return v;
}

static void test_plic(void)
{
    struct fake_clock fa = {0}, fb = {0};
    struct plic_host ha = {&fa, fake_plic_irq}, hb = {&fb, fake_plic_irq};
    struct plic *a = plic_new(&ha, 1), *b = plic_new(&hb, 1), *two = plic_new(&hb, 2);
    struct comp ca = {"plic", a, plic_save_w, plic_load_w, PLIC_STATE_VERSION}, cb;
    struct state_buf good;
    const size_t ctx0 = 4 + 4 * (PLIC_NUM_SOURCES + 1) + 12 * PLIC_WORDS;

    if (!a || !b || !two)
        abort();
    (void)plic_ops.write(a, 4 * 5, 4, 3); /* priorities */
    (void)plic_ops.write(a, 4 * 7, 4, 6);
    (void)plic_ops.write(a, 4 * 10, 4, 2);
    (void)plic_ops.write(a, 0x2080, 4, (1u << 5) | (1u << 7) | (1u << 10)); /* S context */
    (void)plic_ops.write(a, 0x201000, 4, 1);                                /* threshold */
    plic_set_irq(a, 5, true);
    plic_set_irq(a, 7, true);
    plic_set_irq(a, 10, true);
    CHECK_EQ(plic_rd(a, 0x201004), 7, "source 7 claimed before saving");
    cb = ca;
    cb.obj = b;
    fb.irqs = 0;
    comp_roundtrip(&ca, &cb, &good);
    CHECK(fb.irqs == 2 && fb.line[0][1] && !fb.line[0][0], "both outputs sent: S high, M low");
    CHECK_EQ(plic_rd(b, 0x201004), plic_rd(a, 0x201004), "the next claim is the same (5)");
    (void)plic_ops.write(b, 0x201004, 4, 7); /* complete 7: pending again (level high) */
    (void)plic_ops.write(a, 0x201004, 4, 7);
    CHECK(plic_rd(b, 0x201004) == 7 && plic_rd(a, 0x201004) == 7,
          "completing the claim saved re-arms it, on both");
    CHECK_EQ(plic_rd(b, 0x201004), plic_rd(a, 0x201004), "and the last claim agrees (10)");

    comp_refuse_common(&cb, &good);
    comp_refuse_patch(&cb, &good, 4 + 4 * 5, 4, 8, "priority 8");
    comp_refuse_patch(&cb, &good, 4, 4, 1, "a priority for ID 0");
    comp_refuse_patch(&cb, &good, 4 + 4 * (PLIC_NUM_SOURCES + 1), 4, 1, "ID 0 pending");
    comp_refuse_patch(&cb, &good, ctx0, 4, 1, "ID 0 enabled");
    comp_refuse_patch(&cb, &good, ctx0 + 4 * PLIC_WORDS, 4, 8, "threshold 8");
    {
        struct comp c2 = cb;
        char why[200];
        c2.obj = two;
        CHECK(comp_refuses(&c2, good.data, good.len, 1, why, sizeof(why)),
              "plic: 2-context state into a 4-context PLIC refused (%s)", why);
    }
    state_buf_fini(&good);
    plic_free(a);
    plic_free(b);
    plic_free(two);
}

/* ---- UART ------------------------------------------------------------------- */

static void fake_uart_irq(void *o, bool level)
{
    struct fake_clock *f = o;
    f->line[0][0] = level;
    f->irqs++;
}

static void uart_save_w(void *o, struct state_buf *b)
{
    uart_save(o, b);
}

static int uart_load_w(void *o, struct state_buf *b, unsigned v)
{
    return uart_load(o, b, v);
}

static void test_uart(void)
{
    struct fake_clock fa = {.now = 1000000}, fb = {.now = 5};
    struct uart_host ha = {&fa, NULL, fake_uart_irq, fake_now};
    struct uart_host hb = {&fb, NULL, fake_uart_irq, fake_now};
    struct uart *a = uart_new(&ha), *b = uart_new(&hb);
    struct comp ca = {"uart", a, uart_save_w, uart_load_w, UART_STATE_VERSION}, cb;
    struct state_buf good;
    uint8_t ch, got[4] = {0};
    uint64_t dl;

    if (!a || !b)
        abort();
    (void)uart_write(a, UART_IIR, UART_FCR_FE | 0x80); /* FIFO, trigger 8 */
    (void)uart_write(a, UART_IER, UART_IER_RDI);
    (void)uart_write(a, UART_SCR, 0x5a);
    (void)uart_write(a, UART_LCR, 0x03);
    /* wrap the FIFO: 14 in, 12 out, 3 more */
    for (int i = 0; i < 14; i++)
        uart_receive(a, (const uint8_t *)"x", 1);
    for (int i = 0; i < 12; i++)
        (void)uart_read(a, UART_RBR, &ch);
    uart_receive(a, (const uint8_t *)"abc", 3);
    dl = uart_next_deadline(a) - fa.now;
    cb = ca;
    cb.obj = b;
    comp_roundtrip(&ca, &cb, &good);
    CHECK_EQ(uart_next_deadline(b) - fb.now, dl, "the character timeout is as far away");
    CHECK(fb.line[0][0] == uart_irq_level(a) && fb.irqs >= 1, "the line is sent on load");
    fb.now += dl;
    uart_poll(b, fb.now);
    CHECK(uart_irq_level(b) && fb.line[0][0], "the timeout fires on the new clock");
    for (int i = 0; i < 5; i++) {
        (void)uart_read(b, UART_RBR, &ch);
        got[i < 2 ? 0 : i - 2] = ch; /* two 'x' first, then ours */
    }
    CHECK(!memcmp(got, "abc", 3), "the FIFO's bytes come out in order (%.3s)", (char *)got);
    (void)uart_read(b, UART_SCR, &ch);
    CHECK_EQ(ch, 0x5a, "scratch register");

    comp_refuse_common(&cb, &good);
    comp_refuse_patch(&cb, &good, 1, 1, 0x10, "IER 0x10");
    comp_refuse_patch(&cb, &good, 5, 1, 0x20, "MCR 0x20");
    comp_refuse_patch(&cb, &good, 3, 1, 0x06, "FCR with reset bits");
    comp_refuse_patch(&cb, &good, 11, 1, 2, "thr_ipending 2");
    comp_refuse_patch(&cb, &good, 13, 1, 17, "17 bytes in the FIFO");
    comp_refuse_patch(&cb, &good, 3, 1, 0, "FIFO bytes with the FIFO off");
    state_buf_fini(&good);
    uart_free(a);
    uart_free(b);
}

/* ---- goldfish RTC, PCIe host -------------------------------------------------- */

static uint64_t fake_real(void *o)
{
    return ((struct fake_clock *)o)->now;
}

static void fake_rtc_irq(void *o, bool level)
{
    fake_uart_irq(o, level);
}

static void rtc_save_w(void *o, struct state_buf *b)
{
    goldfish_rtc_save(o, b);
}

static int rtc_load_w(void *o, struct state_buf *b, unsigned v)
{
    return goldfish_rtc_load(o, b, v);
}

static void pcie_save_w(void *o, struct state_buf *b)
{
    pcie_host_save(o, b);
}

static int pcie_load_w(void *o, struct state_buf *b, unsigned v)
{
    return pcie_host_load(o, b, v);
}

static void test_rtc_pcie(void)
{
    struct fake_clock fa = {.now = 1700000000000000000ull}, fb = {.now = 1700000000000000000ull};
    struct goldfish_rtc_host ha = {&fa, fake_real, fake_now, fake_rtc_irq};
    struct goldfish_rtc_host hb = {&fb, fake_real, fake_now, fake_rtc_irq};
    struct goldfish_rtc *a = goldfish_rtc_new(&ha), *b = goldfish_rtc_new(&hb);
    struct comp ca = {"goldfish-rtc", a, rtc_save_w, rtc_load_w, GOLDFISH_RTC_STATE_VERSION}, cb;
    struct pcie_host *pa = pcie_host_new(), *pb = pcie_host_new();
    struct comp pca = {"pcie-host", pa, pcie_save_w, pcie_load_w, PCIE_HOST_STATE_VERSION}, pcb;
    struct state_buf good;
    uint64_t t;

    if (!a || !b || !pa || !pb)
        abort();
    (void)goldfish_rtc_ops.write(a, 0x04, 4, 0x10); /* TIME_HIGH: the guest set its clock */
    t = goldfish_rtc_time(a);
    (void)goldfish_rtc_ops.write(a, 0x0c, 4, (t + 5000) >> 32);
    (void)goldfish_rtc_ops.write(a, 0x08, 4, (uint32_t)(t + 5000)); /* alarm in 5 us */
    (void)goldfish_rtc_ops.write(a, 0x10, 4, 1);
    cb = ca;
    cb.obj = b;
    comp_roundtrip(&ca, &cb, &good);
    CHECK_EQ(goldfish_rtc_time(b), t, "the guest's clock keeps its offset from real time");
    fb.now += 5000;
    goldfish_rtc_poll(b);
    CHECK(fb.line[0][0], "the alarm fires on the new host");
    comp_refuse_common(&cb, &good);
    comp_refuse_patch(&cb, &good, 20, 1, 2, "alarm_running 2");
    comp_refuse_patch(&cb, &good, 22, 1, 3, "irq_enabled 3");
    state_buf_fini(&good);

    (void)pcie_host_ecam_ops.write(pa, 0x04, 2, 0x0507);
    (void)pcie_host_ecam_ops.write(pa, 0x3c, 1, 0x21);
    pcb = pca;
    pcb.obj = pb;
    comp_roundtrip(&pca, &pcb, &good);
    CHECK(pb->st.command == 0x0507 && pb->st.int_line == 0x21, "bridge registers restored");
    comp_refuse_common(&pcb, &good);
    comp_refuse_patch(&pcb, &good, 0, 2, 0xffff, "command with read-only bits");
    state_buf_fini(&good);
    goldfish_rtc_free(a);
    goldfish_rtc_free(b);
    pcie_host_free(pa);
    pcie_host_free(pb);
}

/* ---- virtio ------------------------------------------------------------------ */

#define F_BASE (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

static void mmio_save_w(void *o, struct state_buf *b)
{
    virtio_mmio_save(o, b);
}

static int mmio_load_w(void *o, struct state_buf *b, unsigned v)
{
    return virtio_mmio_load(o, b, v);
}

/* A second transport on dev for the destination side, wired to t's
 * driver view (t is a copy of the source driver, so it goes on). */
static void td_clone(struct td *t, const struct td *src, struct virtio_dev *dev)
{
    struct virtio_transport irq = {t, td_irq};

    *t = *src;
    t->dev = dev;
    t->irq = false;
    virtio_mmio_init(&t->mmio, dev, &irq);
}

/* Offsets in the version 1 section of a 1-queue virtio-mmio slot. */
enum {
    VM_DEV = 1 + 12 + 26 + 2, /* present, selectors, staged queue 0, core version */
    VM_STATUS = VM_DEV + 5,
    VM_FEATURES = VM_STATUS + 4,
    VM_ISR = VM_FEATURES + 8,
    VM_BROKEN = VM_ISR + 8,
    VM_Q0 = VM_BROKEN + 1, /* num, ready, desc, avail, used, ... */
};

static void test_virtio_rng(struct gmem *mem)
{
    struct vrng_config cfg = {.id = "rng0"};
    char err[200];
    struct virtio_dev *d1 = vrng_new(mem, &cfg, err, sizeof(err));
    struct virtio_dev *d2 = vrng_new(mem, &cfg, err, sizeof(err));
    struct td t1, t2;
    struct td_buf buf = {TD_DATA, 64, true};
    struct comp c1 = {"virtio-mmio(rng)", NULL, mmio_save_w, mmio_load_w,
                      VIRTIO_MMIO_STATE_VERSION},
                c2;
    struct virtio_mmio empty, empty2;
    struct state_buf good;
    uint32_t id, len;

    if (!d1 || !d2)
        abort();
    td_attach(&t1, mem, d1);
    td_setup(&t1, F_BASE, 16);
    for (int i = 0; i < 3; i++) {
        td_add(&t1, &buf, 1, false);
        td_kick(&t1, 0);
        td_used(&t1, &id, &len);
    }
    td_wr(&t1, VIRTIO_MMIO_QUEUE_SEL, 9); /* a selector left out of range is legal */
    td_wr(&t1, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    CHECK(t1.irq && d1->isr == VIRTIO_ISR_QUEUE, "source: interrupt pending");
    td_clone(&t2, &t1, d2);
    c1.obj = &t1.mmio;
    c2 = c1;
    c2.obj = &t2.mmio;
    virtio_mmio_pre_save(&t1.mmio);
    comp_roundtrip(&c1, &c2, &good);
    CHECK(t2.irq, "the loaded device raises its line (ISR pending)");
    CHECK(d2->vq[0].last_avail == 3 && d2->vq[0].used_idx == 3 && d2->vq[0].ready,
          "queue indices restored");
    CHECK_EQ(td_rd(&t2, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)(virtio_host_features(d2) >> 32),
             "feature selector restored");
    td_ack(&t2);
    CHECK(!t2.irq, "acknowledged on the destination");
    td_clear_dirty(mem);
    td_add(&t2, &buf, 1, false);
    td_kick(&t2, 0);
    /* (no interrupt: EVENT_IDX with used_event 0 said one was enough) */
    CHECK(td_used(&t2, &id, &len) && len == 64 && !t2.irq,
          "the next request is served by the loaded device, EVENT_IDX state kept");
    CHECK(td_dirty(mem, TD_USED) && td_dirty(mem, TD_DATA), "its writes are marked dirty");

    comp_refuse_common(&c2, &good);
    comp_refuse_patch(&c2, &good, VM_DEV, 4, VIRTIO_ID_BLOCK, "another device type");
    comp_refuse_patch(&c2, &good, VM_DEV + 4, 1, 2, "another number of queues");
    comp_refuse_patch(&c2, &good, VM_STATUS, 4, 0x10f, "status beyond a byte");
    comp_refuse_patch(&c2, &good, VM_FEATURES + 4, 1, 0, "FEATURES_OK without VERSION_1");
    comp_refuse_patch(&c2, &good, VM_FEATURES + 5, 1, 0x80, "negotiated feature 47");
    comp_refuse_patch(&c2, &good, VM_ISR, 4, 4, "ISR bit 2");
    comp_refuse_patch(&c2, &good, VM_BROKEN, 1, 1, "broken without NEEDS_RESET");
    comp_refuse_patch(&c2, &good, VM_Q0, 2, 12, "queue size 12");
    comp_refuse_patch(&c2, &good, VM_Q0, 2, 0x8000, "queue size above num_max");
    comp_refuse_patch(&c2, &good, VM_Q0, 2, 0, "ready without a size");
    comp_refuse_patch(&c2, &good, VM_Q0 + 3, 8, TD_DESC + 8, "misaligned descriptor table");
    comp_refuse_patch(&c2, &good, VM_Q0 + 19, 8, TD_RAM_BASE + TD_RAM_SIZE - 8,
                      "used ring past the end of RAM");
    comp_refuse_patch(&c2, &good, VM_Q0 + 11, 8, 0x1000, "available ring outside RAM");
    comp_refuse_patch(&c2, &good, VM_DEV - 2, 2, VIRTIO_STATE_VERSION + 1, "core version 2");

    /* Empty slots: a marker only, and never mixed up with a device. */
    virtio_mmio_init(&empty, NULL, NULL);
    virtio_mmio_init(&empty2, NULL, NULL);
    {
        struct comp e1 = c1, e2 = c1;
        struct state_buf eb;
        char why[200];
        e1.obj = &empty;
        e2.obj = &empty2;
        virtio_mmio_pre_save(&empty);
        comp_roundtrip(&e1, &e2, &eb);
        CHECK(eb.len == 1, "an empty slot saves one byte");
        CHECK(comp_refuses(&c2, eb.data, eb.len, 1, why, sizeof(why)),
              "an empty slot's state into a device's refused (%s)", why);
        CHECK(comp_refuses(&e2, good.data, good.len, 1, why, sizeof(why)),
              "a device's state into an empty slot refused (%s)", why);
        state_buf_fini(&eb);
    }
    state_buf_fini(&good);
    virtio_dev_free(d1);
    virtio_dev_free(d2);
}

static struct virtio_dev *blk_open(struct gmem *mem, const char *path)
{
    struct vblk_config cfg = {.path = path, .id = "d0"};
    char err[300];
    struct virtio_dev *d = vblk_new(mem, &cfg, err, sizeof(err));

    if (!d)
        printf("vblk_new: %s\n", err);
    return d;
}

static void test_virtio_blk(struct gmem *mem)
{
    char path[] = "/tmp/godwit-state-XXXXXX";
    int fd = mkstemp(path);
    struct virtio_dev *d1, *d2;
    struct td t1, t2;
    struct comp c1 = {"virtio-mmio(blk)", NULL, mmio_save_w, mmio_load_w,
                      VIRTIO_MMIO_STATE_VERSION},
                c2;
    struct state_buf good;
    uint64_t v = 0;

    if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
        abort();
    close(fd);
    d1 = blk_open(mem, path);
    d2 = blk_open(mem, path);
    if (!d1 || !d2)
        abort();
    td_attach(&t1, mem, d1);
    td_setup(&t1, F_BASE | VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE), 64);
    (void)virtio_mmio_ops.write(&t1.mmio, VIRTIO_MMIO_CONFIG + 32, 1, 0); /* writethrough */
    td_clone(&t2, &t1, d2);
    c1.obj = &t1.mmio;
    c2 = c1;
    c2.obj = &t2.mmio;
    virtio_mmio_pre_save(&t1.mmio);
    comp_roundtrip(&c1, &c2, &good);
    (void)virtio_mmio_ops.read(&t2.mmio, VIRTIO_MMIO_CONFIG + 32, 1, &v);
    CHECK_EQ(v, 0, "virtio-blk: the driver's writeback choice survives");
    comp_refuse_common(&c2, &good);
    comp_refuse_patch(&c2, &good, good.len - 1, 1, 2, "writeback 2");
    state_buf_fini(&good);
    virtio_dev_free(d1);
    virtio_dev_free(d2);
    unlink(path);
}

static void test_virtio_net(struct gmem *mem)
{
    struct net_opts o;
    char err[300];
    struct net_backend *nb1, *nb2, *nb3;
    struct vnet_config cfg = {.id = "nic0"};
    struct virtio_dev *d1, *d2, *d3;
    struct td t1, t2, t3;
    struct td_buf buf[2] = {{TD_DATA, 12, false}, {TD_DATA + 0x100, 60, false}};
    struct comp c1 = {"virtio-mmio(net)", NULL, mmio_save_w, mmio_load_w,
                      VIRTIO_MMIO_STATE_VERSION},
                c2, c3;
    struct state_buf good;
    uint32_t id, len;
    uint64_t v = 0;

    if (net_parse("user,id=n0,ipv6=off", &o, err, sizeof(err)) < 0)
        abort();
    nb1 = net_backend_open(&o, err, sizeof(err));
    nb2 = net_backend_open(&o, err, sizeof(err));
    nb3 = net_backend_open(&o, err, sizeof(err));
    if (!nb1 || !nb2 || !nb3)
        abort();
    vnet_default_mac(0, cfg.mac);
    cfg.backend = nb1;
    d1 = vnet_new(mem, &cfg, err, sizeof(err));
    cfg.backend = nb2;
    d2 = vnet_new(mem, &cfg, err, sizeof(err));
    vnet_default_mac(1, cfg.mac);
    cfg.backend = nb3;
    d3 = vnet_new(mem, &cfg, err, sizeof(err));
    if (!d1 || !d2 || !d3)
        abort();
    td_attach(&t1, mem, d1);
    td_negotiate(&t1, F_BASE | VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS));
    td_queue(&t1, 1, 16); /* transmit only */
    td_driver_ok(&t1);
    memset(mem->host + (TD_DATA - TD_RAM_BASE), 0, 0x200);
    memset(mem->host + (TD_DATA + 0x100 - TD_RAM_BASE), 0xff, 6); /* broadcast */
    td_add(&t1, buf, 2, false);
    td_kick(&t1, 1);
    CHECK(!td_used(&t1, &id, &len), "virtio-net: a sent chain is held for batching");
    vnet_set_link(d1, false);
    virtio_mmio_pre_save(&t1.mmio);
    CHECK(td_used(&t1, &id, &len) && id == 0, "pre_save returns it through the used ring");
    td_clone(&t2, &t1, d2);
    c1.obj = &t1.mmio;
    c2 = c1;
    c2.obj = &t2.mmio;
    comp_roundtrip(&c1, &c2, &good);
    (void)virtio_mmio_ops.read(&t2.mmio, VIRTIO_MMIO_CONFIG + 6, 2, &v);
    CHECK_EQ(v, 0, "virtio-net: link status (down) restored");
    CHECK(t2.irq, "queue and config interrupts pending after the load");
    td_add(&t2, buf, 2, false);
    td_kick(&t2, 1);
    virtio_mmio_pre_save(&t2.mmio);
    CHECK(td_used(&t2, &id, &len), "the loaded NIC transmits and returns the next chain");

    comp_refuse_common(&c2, &good);
    comp_refuse_patch(&c2, &good, good.len - 2, 2, 4, "net status bit 2");
    td_clone(&t3, &t1, d3);
    c3 = c1;
    c3.obj = &t3.mmio;
    {
        char why[200];
        CHECK(comp_refuses(&c3, good.data, good.len, 1, why, sizeof(why)),
              "virtio-net: another NIC's state (MAC) refused (%s)", why);
    }
    state_buf_fini(&good);
    virtio_dev_free(d1);
    virtio_dev_free(d2);
    virtio_dev_free(d3);
    net_backend_free(nb1);
    net_backend_free(nb2);
    net_backend_free(nb3);
}

int main(void)
{
    struct gmem *mem;

    setvbuf(stdout, NULL, _IOLBF, 0);
    test_hart();
    test_clint();
    test_plic();
    test_uart();
    test_rtc_pcie();
    mem = gmem_new(TD_RAM_BASE, TD_RAM_SIZE);
    if (!mem)
        abort();
    test_virtio_rng(mem);
    test_virtio_blk(mem);
    test_virtio_net(mem);
    gmem_free(mem);
    return ht_summary();
}
