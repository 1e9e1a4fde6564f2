/*
 * announce-self's machinery (virt_net.c) without a running machine: a
 * zeroed board with two NICs on slirp backends put straight into its
 * virtio slots, and virt_announce_poll() driven with a fake clock.
 * Checks: QEMU's round timing (first round at once, gaps initial,
 * initial+step, ... capped at max, counted from when a round really ran),
 * RARP on every round and the guest's announce on top where the driver
 * negotiated GUEST_ANNOUNCE, interface selection by -device and -netdev
 * id, unknown interfaces, limits, ids (replace, too many), and the QMP
 * handler's argument checks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "board_check.h"
#include "machine/virt_int.h"
#include "virtio/virtio_net.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define MS       1000000ull
#define T0       (1000ull * MS) /* the fake clock's start */

static char err[512];

static void set_irq(void *opaque, bool level)
{
    (void)opaque;
    (void)level;
}

static uint64_t rarps(struct virtio_dev *d)
{
    return vnet_stats(d)->rarps;
}

/* Start the driver side far enough for vnet_announce to ask the guest. */
static void driver_ok(struct virtio_dev *d, uint64_t features)
{
    virtio_reset(d);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    d->driver_features = features;
    virtio_set_status(d,
                      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static struct virtio_dev *make_nic(struct gmem *mem, struct net_backend **nb, const char *spec,
                                   const char *id, unsigned mac_index)
{
    struct net_opts o;
    struct vnet_config cfg = {.id = id};
    struct virtio_dev *d;

    if (net_parse(spec, &o, err, sizeof(err)) < 0)
        return NULL;
    *nb = net_backend_open(&o, err, sizeof(err));
    if (!*nb)
        return NULL;
    vnet_default_mac(mac_index, cfg.mac);
    cfg.backend = *nb;
    d = vnet_new(mem, &cfg, err, sizeof(err));
    if (d)
        d->transport = (struct virtio_transport){NULL, set_irq};
    return d;
}

/* Run timer rounds at exactly their deadlines; returns the gaps seen (ms). */
static unsigned run_all(struct virt *vm, uint64_t *now, uint64_t *gaps, unsigned max)
{
    unsigned n = 0;
    uint64_t last = *now;

    virt_announce_poll(vm, *now);
    while (virt_announce_next_deadline(vm) != UINT64_MAX && n < max) {
        *now = virt_announce_next_deadline(vm);
        virt_announce_poll(vm, *now);
        gaps[n++] = (*now - last) / MS;
        last = *now;
    }
    return n;
}

static int start(struct virt *vm, unsigned initial, unsigned max, unsigned rounds, unsigned step,
                 const char *id)
{
    struct virt_announce_params p = {initial, max, rounds, step, NULL, 0, id};
    return virt_announce_start(vm, &p, err, sizeof(err));
}

static void test_timing(struct virt *vm, struct virtio_dev *a, struct virtio_dev *b)
{
    struct virt_announce_params p;
    uint64_t now = T0, gaps[16], ra = rarps(a), rb = rarps(b);
    unsigned n;

    virt_announce_params_default(&p);
    CHECK(p.initial_ms == 50 && p.max_ms == 550 && p.rounds == 5 && p.step_ms == 100,
          "QEMU's defaults 50/550/5/100");
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "nothing due before a start");
    CHECK(virt_announce_start(vm, &p, err, sizeof(err)) == 0, "start: %s", err);
    CHECK(virt_announce_next_deadline(vm) <= now, "first round due at once");
    virt_announce_poll(vm, now);
    CHECK(rarps(a) == ra + 1 && rarps(b) == rb + 1 && vm->announce.rounds == 1,
          "round 1: a RARP from each NIC");
    CHECK_EQ(virt_announce_next_deadline(vm), now + 50 * MS, "round 2 due initial (50 ms) later");
    virt_announce_poll(vm, now + 49 * MS);
    CHECK(vm->announce.rounds == 1, "not before its time");
    n = run_all(vm, &now, gaps, 16);
    CHECK(n == 4 && gaps[0] == 50 && gaps[1] == 150 && gaps[2] == 250 && gaps[3] == 350,
          "gaps 50, 150, 250, 350 ms (got %u rounds)", n);
    CHECK(rarps(a) == ra + 5 && rarps(b) == rb + 5 && vm->announce.rounds == 5,
          "5 rounds, 5 RARPs per NIC");
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "done: no deadline");

    /* The gap is capped at max. */
    CHECK(start(vm, 100, 150, 4, 100, NULL) == 0, "start 100/150/4/100: %s", err);
    n = run_all(vm, &now, gaps, 16);
    CHECK(n == 3 && gaps[0] == 100 && gaps[1] == 150 && gaps[2] == 150, "gaps 100, 150, 150 ms");

    /* max below initial: every gap is max (QEMU's rule). */
    CHECK(start(vm, 500, 20, 3, 1, NULL) == 0, "start 500/20/3/1: %s", err);
    n = run_all(vm, &now, gaps, 16);
    CHECK(n == 2 && gaps[0] == 20 && gaps[1] == 20, "max < initial: gaps of max");

    /* A round held back (VM paused) runs once when polled; the next one
     * counts from then, the rounds do not bunch up. */
    CHECK(start(vm, 50, 550, 3, 100, NULL) == 0, "start: %s", err);
    virt_announce_poll(vm, now);
    now += 10000 * MS;
    virt_announce_poll(vm, now);
    CHECK_EQ(virt_announce_next_deadline(vm), now + 150 * MS,
             "late round: the next is 150 ms after it ran");
    virt_announce_poll(vm, now + 150 * MS);
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "3 rounds");

    /* One round: no deadline after it. */
    CHECK(start(vm, 0, 0, 1, 1, NULL) == 0, "start rounds=1: %s", err);
    virt_announce_poll(vm, now);
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "rounds=1: one round");
}

static void test_select(struct virt *vm, struct virtio_dev *a, struct virtio_dev *b)
{
    static const char *const by_dev[] = {"nic-a"}, *const by_netdev[] = {"n1"},
                             *const both[] = {"nic-a", "n1", "n0"}, *const bad[] = {"n0", "nope"};
    struct virt_announce_params p = {0, 0, 1, 1, by_dev, 1, NULL};
    uint64_t ra = rarps(a), rb = rarps(b);

    CHECK(virt_announce_start(vm, &p, err, sizeof(err)) == 0, "by -device id: %s", err);
    virt_announce_poll(vm, T0);
    CHECK(rarps(a) == ra + 1 && rarps(b) == rb, "only nic-a announced");
    p.ifaces = by_netdev;
    CHECK(virt_announce_start(vm, &p, err, sizeof(err)) == 0, "by -netdev id: %s", err);
    virt_announce_poll(vm, T0);
    CHECK(rarps(a) == ra + 1 && rarps(b) == rb + 1, "only the NIC on n1 announced");
    p.ifaces = both;
    p.nifaces = 3;
    CHECK(virt_announce_start(vm, &p, err, sizeof(err)) == 0, "both, nic-a twice: %s", err);
    virt_announce_poll(vm, T0);
    CHECK(rarps(a) == ra + 2 && rarps(b) == rb + 2, "each NIC once per round");
    p.ifaces = bad;
    p.nifaces = 2;
    CHECK(virt_announce_start(vm, &p, err, sizeof(err)) == -ENODEV && strstr(err, "'nope'"),
          "unknown interface refused: %s", err);
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "nothing started");
}

static void test_limits(struct virt *vm)
{
    char id[VIRT_ANNOUNCE_ID_MAX + 1];

    CHECK(start(vm, 50, 550, 0, 100, NULL) == -EINVAL && strstr(err, "'rounds'"),
          "rounds 0 refused: %s", err);
    CHECK(start(vm, 50, 550, 1001, 100, NULL) == -EINVAL, "rounds 1001 refused");
    CHECK(start(vm, 50, 550, 5, 0, NULL) == -EINVAL && strstr(err, "'step'"), "step 0 refused");
    CHECK(start(vm, 50, 550, 5, 10001, NULL) == -EINVAL, "step 10001 refused");
    CHECK(start(vm, 100001, 550, 5, 100, NULL) == -EINVAL && strstr(err, "'initial'"),
          "initial 100001 refused");
    CHECK(start(vm, 50, 100001, 5, 100, NULL) == -EINVAL && strstr(err, "'max'"),
          "max 100001 refused");
    CHECK(start(vm, 100000, 100000, 1000, 10000, NULL) == 0, "the upper limits are accepted");
    CHECK(start(vm, 0, 0, 1, 1, NULL) == 0, "the lower limits are accepted (replaces the last)");
    virt_announce_poll(vm, T0);
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    CHECK(start(vm, 50, 550, 5, 100, id) == -EINVAL, "an id too long refused");
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "nothing left running");
}

static void test_ids(struct virt *vm, struct virtio_dev *a)
{
    static const char *const ids[] = {"a", "b", "c", "d"};
    uint64_t ra = rarps(a);

    for (unsigned k = 0; k < 4; k++)
        CHECK(start(vm, 1000 * (k + 1), 100000, 3, 1, ids[k]) == 0, "id %s: %s", ids[k], err);
    CHECK(start(vm, 50, 550, 5, 100, "e") == -EBUSY, "a fifth id: busy: %s", err);
    virt_announce_poll(vm, T0);
    CHECK(rarps(a) == ra + 4, "four timers, four rounds at once");
    CHECK_EQ(virt_announce_next_deadline(vm), T0 + 1000 * MS, "earliest of the four");
    CHECK(start(vm, 5000, 100000, 3, 1, "a") == 0, "id a again: replaced: %s", err);
    virt_announce_poll(vm, T0);
    CHECK(rarps(a) == ra + 5, "the replaced run starts over at once");
    CHECK_EQ(virt_announce_next_deadline(vm), T0 + 2000 * MS, "b is now the earliest");
    /* finish them all */
    for (int guard = 0; guard < 100 && virt_announce_next_deadline(vm) != UINT64_MAX; guard++)
        virt_announce_poll(vm, virt_announce_next_deadline(vm));
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "all ids finished");
}

static void test_guest(struct virt *vm, struct virtio_dev *a, struct virtio_dev *b)
{
    const struct vnet_stats *st = vnet_stats(a);
    uint64_t ra = rarps(a), rb = rarps(b), ann = st->announces, asked = vm->announce.guest_asked;

    driver_ok(a, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
                     VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE));
    CHECK(a->status & VIRTIO_STATUS_DRIVER_OK, "nic-a's driver runs with GUEST_ANNOUNCE");
    driver_ok(b, VIRTIO_BIT(VIRTIO_F_VERSION_1));
    CHECK(start(vm, 10, 100, 2, 10, NULL) == 0, "start: %s", err);
    virt_announce_poll(vm, T0);
    CHECK(st->announces == ann + 1 && (a->config[6] & VIRTIO_NET_S_ANNOUNCE),
          "the guest is asked (VIRTIO_NET_S_ANNOUNCE)");
    CHECK(rarps(a) == ra + 1, "and the host sends the RARP too");
    CHECK(rarps(b) == rb + 1 && vnet_stats(b)->announces == 0,
          "a driver without GUEST_ANNOUNCE: RARP only");
    virt_announce_poll(vm, T0 + 10 * MS);
    CHECK(st->announces == ann + 2 && rarps(a) == ra + 2 && vm->announce.guest_asked == asked + 2,
          "every round asks the guest again");
}

/* The QMP handler: returns the error class (NULL on success) and leaves
 * the description in err. */
static const char *qmp(struct virt *vm, const char *json)
{
    json_t *args = json_loads(json, 0, NULL);
    struct qmp_error e = {0};
    json_t *ret;

    ret = virt_qmp_announce_self(vm, args, &e);
    json_decref(ret);
    json_decref(args);
    snprintf(err, sizeof(err), "%s", e.desc);
    return e.cls;
}

static void test_qmp(struct virt *vm, struct virtio_dev *a)
{
    uint64_t ra = rarps(a);
    const char *cls;

    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 50, "
                  "\"interfaces\": [\"nic-a\"], \"id\": \"bob\"}");
    CHECK(cls == NULL, "QEMU's example arguments accepted: %s", err);
    virt_announce_poll(vm, T0);
    CHECK(rarps(a) == ra + 1, "and it announces");
    CHECK(virt_announce_next_deadline(vm) == T0 + 50 * MS, "second round due");
    virt_announce_poll(vm, T0 + 50 * MS);

    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 50, \"x\": 1}");
    CHECK(cls && !strcmp(cls, QMP_ERR_GENERIC) && !strcmp(err, "Parameter 'x' is unexpected"),
          "unknown member: %s", err);
    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"step\": 50}");
    CHECK(cls && !strcmp(err, "Parameter 'rounds' is missing"), "missing member: %s", err);
    cls = qmp(vm, "{\"initial\": \"50\", \"max\": 550, \"rounds\": 2, \"step\": 50}");
    CHECK(cls && !strcmp(err, "Invalid parameter type for 'initial', expected: integer"),
          "string for an integer: %s", err);
    cls = qmp(vm, "{\"initial\": -1, \"max\": 550, \"rounds\": 2, \"step\": 50}");
    CHECK(cls && !strcmp(err, "Parameter 'initial' expects a value between 0 and 100000"),
          "negative: %s", err);
    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 0, \"step\": 50}");
    CHECK(cls && !strcmp(err, "Parameter 'rounds' expects a value between 1 and 1000"),
          "rounds 0: %s", err);
    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 99999999999}");
    CHECK(cls && !strcmp(err, "Parameter 'step' expects a value between 1 and 10000"),
          "huge step: %s", err);
    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 50, "
                  "\"interfaces\": \"nic-a\"}");
    CHECK(cls && strstr(err, "'interfaces', expected: array"), "interfaces not a list: %s", err);
    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 50, "
                  "\"interfaces\": [1]}");
    CHECK(cls && strstr(err, "'interfaces[0]', expected: string"), "a number as a name: %s", err);
    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 50, "
                  "\"interfaces\": [\"eth9\"]}");
    CHECK(cls && !strcmp(cls, QMP_ERR_DEV_NOT_FOUND) && !strcmp(err, "Device 'eth9' not found"),
          "unknown interface: %s %s", cls ? cls : "-", err);
    cls = qmp(vm, "{\"initial\": 50, \"max\": 550, \"rounds\": 2, \"step\": 50, \"id\": 7}");
    CHECK(cls && strstr(err, "'id', expected: string"), "id not a string: %s", err);
    CHECK_EQ(virt_announce_next_deadline(vm), UINT64_MAX, "no refused command started a run");
}

int main(void)
{
    struct gmem *mem = gmem_new(RAM_BASE, RAM_SIZE);
    struct virt *vm = calloc(1, sizeof(*vm));
    struct net_backend *nb0 = NULL, *nb1 = NULL;
    struct virtio_dev *a, *b;

    CHECK(mem && vm, "RAM and board");
    if (!mem || !vm)
        return board_check_done();
    a = make_nic(mem, &nb0, "user,id=n0,ipv6=off", "nic-a", 0);
    CHECK(a != NULL, "nic-a on n0: %s", err);
    b = make_nic(mem, &nb1, "user,id=n1,ipv6=off", NULL, 1);
    CHECK(b != NULL, "a NIC without id on n1: %s", err);
    if (!a || !b)
        return board_check_done();
    vm->virtio[VIRT_VIRTIO_COUNT - 1].dev = a;
    vm->virtio[VIRT_VIRTIO_COUNT - 2].dev = b;

    test_timing(vm, a, b);
    test_select(vm, a, b);
    test_limits(vm);
    test_ids(vm, a);
    test_guest(vm, a, b);
    test_qmp(vm, a);

    virtio_dev_free(a);
    virtio_dev_free(b);
    net_backend_free(nb0);
    net_backend_free(nb1);
    gmem_free(mem);
    free(vm);
    return board_check_done();
}
