/*
 * Unit tests for the migration engine (src/migration: mig_out, mig_live,
 * mig_in, mig_saveload) on a small fake machine: real guest RAM (gmem),
 * real files and real unix sockets, the test thread playing the run loop.
 * The engine knows the machine only through struct mig_machine_ops, which
 * is what lets it run here without the board.
 *
 * Covers: a file save and load round trip (identical RAM and component),
 * a live migration between two fake machines, the cancel race (cancel at
 * any moment never leaves a job stuck in "cancelling"), a file target that
 * exists and is not a regular file, a destination whose source goes quiet,
 * trailing bytes after EOF on a live stream, and a COMMIT that claims a
 * pause longer than the migration; over TLS (tests/unit/test_mig_tls.c
 * covers the session itself): a TLS live migration, a wrong key and a
 * plaintext source refused before the loader, the source resumed; a
 * destination of another size refuses the stream and the source reports
 * its reason (plain and TLS).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board_check.h"
#include "migration/mig_proto.h"
#include "migration/migration.h"

#define FAKE_RAM (4u << 20)

/* The fake machine: RAM, one component (a counter), and what the engine did. */
struct fake {
    struct mig_machine mm;
    uint64_t counter; /* the component's state */
    bool parked, running, loaded_comp, gone;
    int unparks;
    enum mig_unpark how;
    int last_status;
    bool done_called, failed_called;
    uint64_t paused_ns;
};

static void fake_kick(void *opaque)
{
    (void)opaque; /* the test polls */
}
static void fake_park(void *opaque)
{
    struct fake *f = opaque;

    f->parked = true;
    f->running = false;
}
static void fake_unpark(void *opaque, enum mig_unpark how)
{
    struct fake *f = opaque;

    f->parked = false;
    f->unparks++;
    f->how = how;
    f->running = how == MIG_UNPARK_RESUME;
}
static void fake_status(void *opaque, enum mig_status st, uint64_t pass)
{
    struct fake *f = opaque;

    if (!pass)
        f->last_status = (int)st;
}
static char *fake_config(void *opaque)
{
    struct fake *f = opaque;
    char *s = NULL;

    if (asprintf(&s, "machine=fake\nram=%llu\n",
                 (unsigned long long)(f->mm.mem->npages * GMEM_PAGE_SIZE)) < 0)
        return NULL;
    return s;
}
static int fake_save_components(void *opaque, struct state_stream *s)
{
    struct fake *f = opaque;
    struct state_buf b;

    state_buf_init(&b);
    state_put_u64(&b, f->counter);
    state_write_section(s, STATE_SEC_DEVICE, "fake", 0, 1, b.data, b.len);
    state_buf_fini(&b);
    return state_stream_error(s);
}
static void fake_load_begin(void *opaque)
{
    ((struct fake *)opaque)->loaded_comp = false;
}
static int fake_load_component(void *opaque, const struct state_section *sec, struct state_buf *b,
                               char *err, size_t errlen)
{
    struct fake *f = opaque;
    uint64_t v;

    if (strcmp(sec->name, "fake") != 0 || sec->instance != 0 || f->loaded_comp) {
        snprintf(err, errlen, "unexpected component %s %u", sec->name, sec->instance);
        return -EPROTO;
    }
    v = state_get_u64(b);
    if (state_buf_expect_end(b, "fake") < 0) {
        snprintf(err, errlen, "fake: %s", state_buf_msg(b));
        return -EPROTO;
    }
    f->counter = v;
    f->loaded_comp = true;
    return 0;
}
static int fake_load_end(void *opaque, char *err, size_t errlen)
{
    if (!((struct fake *)opaque)->loaded_comp) {
        snprintf(err, errlen, "the state lacks the fake component");
        return -EPROTO;
    }
    return 0;
}
static int fake_incoming_done(void *opaque, uint64_t paused_ns, char *err, size_t errlen)
{
    struct fake *f = opaque;

    (void)err;
    (void)errlen;
    f->done_called = true;
    f->running = true;
    f->paused_ns = paused_ns;
    return 0;
}
static void fake_incoming_failed(void *opaque, const char *why)
{
    (void)why;
    ((struct fake *)opaque)->failed_called = true;
}

static const struct mig_machine_ops fake_ops = {
    .kick = fake_kick,
    .park = fake_park,
    .unpark = fake_unpark,
    .status = fake_status,
    .config_text = fake_config,
    .save_components = fake_save_components,
    .load_begin = fake_load_begin,
    .load_component = fake_load_component,
    .load_end = fake_load_end,
    .incoming_done = fake_incoming_done,
    .incoming_failed = fake_incoming_failed,
};

static void fake_init_ram(struct fake *f, uint64_t ram)
{
    memset(f, 0, sizeof(*f));
    f->mm.ops = &fake_ops;
    f->mm.opaque = f;
    f->mm.mem = gmem_new(0x80000000ull, ram);
    f->mm.idle_ms = 500;
    f->running = true;
    f->last_status = -1;
}

static void fake_fill(struct fake *f, unsigned seed)
{
    /* every third page holds data, the rest stays zero */
    for (uint64_t p = 0; p < f->mm.mem->npages; p += 3)
        for (unsigned i = 0; i < GMEM_PAGE_SIZE; i += 8)
            *(uint64_t *)(f->mm.mem->host + p * GMEM_PAGE_SIZE + i) = p * 7919 + i + seed;
    f->counter = 0x1234 + seed;
}

static void fake_init(struct fake *f)
{
    fake_init_ram(f, FAKE_RAM);
}

/* Play the run loop until the job is over (or ms pass). */
static bool loop_out(struct fake *f, struct mig_out *j, unsigned ms)
{
    struct mig_info info;

    for (unsigned t = 0; t < ms; t++) {
        mig_out_poll(j);
        mig_out_info(j, &info);
        if (info.done && !mig_out_active(j)) {
            mig_out_poll(j);
            return true;
        }
        (void)f;
        usleep(1000);
    }
    return false;
}

static void test_file_roundtrip(void)
{
    struct fake a, b;
    struct mig_params p;
    struct mig_out *j = NULL;
    struct mig_info info;
    char path[] = "/tmp/godwit-engine-XXXXXX", err[400] = "";
    int fd = mkstemp(path);

    close(fd);
    fake_init(&a);
    fake_init(&b);
    fake_fill(&a, 1);
    mig_params_default(&p);
    char uri[64];
    snprintf(uri, sizeof(uri), "file:%s", path);
    CHECK(mig_out_start(&j, &a.mm, uri, &p, err, sizeof(err)) == 0, "file: job starts (%s)", err);
    CHECK(loop_out(&a, j, 10000), "file: job ends");
    mig_out_info(j, &info);
    CHECK(info.status == MIG_ST_COMPLETED, "file: completed (%s)", info.error);
    CHECK(a.how == MIG_UNPARK_SAVED && !a.running, "file: the machine stays stopped (postmigrate)");
    CHECK_EQ(info.pages_normal, (a.mm.mem->npages + 2) / 3, "file: every data page counted");
    CHECK_EQ(info.pages_normal + info.pages_zero, a.mm.mem->npages, "file: every page accounted");
    mig_out_free(j);
    CHECK(mig_in_load_file(&b.mm, path, err, sizeof(err)) == 0, "file: loads (%s)", err);
    CHECK(!memcmp(a.mm.mem->host, b.mm.mem->host, FAKE_RAM) && b.counter == a.counter,
          "file: RAM and component identical after the load");
    /* a second machine of another configuration refuses it */
    unlink(path);
    gmem_free(a.mm.mem);
    gmem_free(b.mm.mem);
}

static void test_file_targets(void)
{
    struct fake a;
    struct mig_params p;
    struct mig_out *j = NULL;
    char err[400] = "";
    struct stat st;

    fake_init(&a);
    mig_params_default(&p);
    CHECK(mig_out_start(&j, &a.mm, "file:/dev/null", &p, err, sizeof(err)) < 0 && err[0],
          "file: a device node is not replaced (%s)", err);
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "file: /dev/null still a device");
    mig_out_free(j);
    j = NULL;
    {
        char fifo[] = "/tmp/godwit-fifo-XXXXXX";
        int fd = mkstemp(fifo);

        close(fd);
        unlink(fifo);
        CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
        err[0] = '\0';
        CHECK(mig_in_load_file(&a.mm, fifo, err, sizeof(err)) < 0 && strstr(err, "regular"),
              "incoming file: a FIFO with no writer is refused at once (%s)", err);
        unlink(fifo);
    }
    gmem_free(a.mm.mem);
}

/* A live migration between two fake machines over a unix socket. */
static void test_live(void)
{
    struct fake a, b;
    struct mig_params p;
    struct mig_out *j = NULL;
    struct mig_in *in = NULL;
    struct mig_info info;
    char sock[64], err[400] = "";

    fake_init(&a);
    fake_init(&b);
    fake_fill(&a, 2);
    snprintf(sock, sizeof(sock), "unix:/tmp/godwit-engine-%d.sock", getpid());
    CHECK(mig_in_start(&in, &b.mm, sock, NULL, err, sizeof(err)) == 0,
          "live: destination listens (%s)", err);
    mig_params_default(&p);
    p.max_bandwidth = 0;
    CHECK(mig_out_start(&j, &a.mm, sock, &p, err, sizeof(err)) == 0, "live: source starts (%s)",
          err);
    for (unsigned t = 0; t < 20000 && !b.done_called && !b.failed_called; t++) {
        mig_out_poll(j);
        mig_in_poll(in);
        usleep(500);
    }
    CHECK(loop_out(&a, j, 10000), "live: the source job ends");
    mig_out_info(j, &info);
    CHECK(info.status == MIG_ST_COMPLETED, "live: completed (%s)", info.error);
    CHECK(b.done_called && b.running, "live: the destination runs");
    CHECK(a.how == MIG_UNPARK_GONE && !a.running, "live: the source stays stopped for good");
    CHECK(!memcmp(a.mm.mem->host, b.mm.mem->host, FAKE_RAM) && b.counter == a.counter,
          "live: RAM and component identical");
    CHECK(info.dirty_sync_count >= 2, "live: at least one dirty sync after the first pass");
    mig_out_free(j);
    mig_in_free(in);
    gmem_free(a.mm.mem);
    gmem_free(b.mm.mem);
}

#define KEY_A "qemu:9d3c4f1a2b8e7f60c1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f50617283\n"
#define KEY_B "qemu:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

/* A fresh directory holding keys.psk (mode 0600) with line. */
static void key_dir(char dir[64], const char *line)
{
    char path[96];
    FILE *f;

    snprintf(dir, 64, "/tmp/godwit-keys-XXXXXX");
    if (!mkdtemp(dir))
        return;
    snprintf(path, sizeof(path), "%s/keys.psk", dir);
    f = fopen(path, "w");
    if (f) {
        fputs(line, f);
        fclose(f);
    }
    chmod(path, 0600);
}

static void key_dir_free(const char *dir)
{
    char path[96];

    snprintf(path, sizeof(path), "%s/keys.psk", dir);
    unlink(path);
    rmdir(dir);
}

/* One live migration between two fresh fake machines of ram bytes, the
 * source with TLS keys in src_dir, the destination in dst_dir (NULL:
 * plain).  Returns the source's final info; *a and *b are left for checks
 * (the caller frees their RAM).  ms: wall time of the migration. */
static void live_run_to(struct fake *a, struct fake *b, uint64_t ram, uint64_t dst_ram, bool full,
                        const char *src_dir, const char *dst_dir, struct mig_info *info, double *ms)
{
    struct mig_params p;
    struct mig_out *j = NULL;
    struct mig_in *in = NULL;
    char sock[64], err[400] = "";
    uint64_t t0;

    fake_init_ram(a, ram);
    fake_init_ram(b, dst_ram);
    if (full) /* every page data: what the channel carries is RAM, not zero-page marks */
        for (uint64_t i = 0, x = 88172645463325252ull; i < ram / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((uint64_t *)a->mm.mem->host)[i] = x;
        }
    else
        fake_fill(a, 5);
    snprintf(sock, sizeof(sock), "unix:/tmp/godwit-engine-tls-%d.sock", getpid());
    mig_params_default(&p);
    p.max_bandwidth = 0;
    if (dst_dir)
        snprintf(p.tls_dir, sizeof(p.tls_dir), "%s", dst_dir);
    CHECK(mig_in_start(&in, &b->mm, sock, &p, err, sizeof(err)) == 0,
          "tls: destination listens (%s)", err);
    p.tls_dir[0] = '\0';
    if (src_dir)
        snprintf(p.tls_dir, sizeof(p.tls_dir), "%s", src_dir);
    t0 = gw_now_ns();
    CHECK(mig_out_start(&j, &a->mm, sock, &p, err, sizeof(err)) == 0, "tls: source starts (%s)",
          err);
    for (unsigned t = 0; t < 200000 && !b->done_called && !b->failed_called; t++) {
        mig_out_poll(j);
        mig_in_poll(in);
        usleep(200);
    }
    CHECK(loop_out(a, j, 20000), "tls: the source job ends");
    *ms = (double)(gw_now_ns() - t0) / 1e6;
    mig_out_info(j, info);
    mig_out_free(j);
    mig_in_free(in);
}

static void live_run(struct fake *a, struct fake *b, uint64_t ram, bool full, const char *src_dir,
                     const char *dst_dir, struct mig_info *info, double *ms)
{
    live_run_to(a, b, ram, ram, full, src_dir, dst_dir, info, ms);
}

/* A destination of another size refuses the stream: the source's
 * error-desc carries the destination's own reason (its ERROR), plain and
 * over TLS, small (refused at the first ROUND) and large (refused while
 * the first pass is on its way). */
static void test_live_refused(void)
{
    struct fake a, b;
    struct mig_info info;
    char ka[64], want[128];
    double ms;

    key_dir(ka, KEY_A);
    for (int big = 0; big < 2; big++) {
        for (int tls = 0; tls < 2; tls++) {
            uint64_t ram = big ? 64u << 20 : FAKE_RAM;

            live_run_to(&a, &b, ram, 2 * FAKE_RAM, big, tls ? ka : NULL, tls ? ka : NULL, &info,
                        &ms);
            snprintf(want, sizeof(want), "saved 'ram=%llu', this machine 'ram=%llu'",
                     (unsigned long long)ram, (unsigned long long)(2 * FAKE_RAM));
            CHECK(info.status == MIG_ST_FAILED &&
                      strstr(info.error, "destination refused the migration: ") == info.error &&
                      strstr(info.error, "differently configured machine") &&
                      strstr(info.error, want),
                  "refused (%s, %s): the source says why (%s)", tls ? "TLS" : "plain",
                  big ? "64 MiB" : "4 MiB", info.error);
            CHECK(a.running && a.how == MIG_UNPARK_RESUME && b.failed_called && !b.done_called,
                  "refused (%s, %s): the source runs on, the destination never ran (%.0f ms)",
                  tls ? "TLS" : "plain", big ? "64 MiB" : "4 MiB", ms);
            CHECK(ms < 3000, "refused: over in %.0f ms (no waiting for a timeout)", ms);
            gmem_free(a.mm.mem);
            gmem_free(b.mm.mem);
        }
    }
    key_dir_free(ka);
}

/* A live migration over TLS, and one whose keys differ. */
static void test_live_tls(void)
{
    struct fake a, b;
    struct mig_info info;
    char ka[64], kb[64];
    double ms;

    key_dir(ka, KEY_A);
    key_dir(kb, KEY_B);
    live_run(&a, &b, FAKE_RAM, false, ka, ka, &info, &ms);
    CHECK(info.status == MIG_ST_COMPLETED && b.done_called && b.running,
          "tls: a live migration over TLS completes (%s)", info.error);
    CHECK(!memcmp(a.mm.mem->host, b.mm.mem->host, FAKE_RAM) && b.counter == a.counter,
          "tls: RAM and component identical");
    gmem_free(a.mm.mem);
    gmem_free(b.mm.mem);

    live_run(&a, &b, FAKE_RAM, false, kb, ka, &info, &ms);
    CHECK(info.status == MIG_ST_FAILED && strstr(info.error, "TLS"),
          "tls: a wrong key fails the migration (%s)", info.error);
    CHECK(a.running && a.how == MIG_UNPARK_RESUME, "tls: wrong key: the source runs on");
    CHECK(b.failed_called && !b.done_called && !b.loaded_comp,
          "tls: wrong key: the destination loaded nothing and failed");
    gmem_free(a.mm.mem);
    gmem_free(b.mm.mem);

    live_run(&a, &b, FAKE_RAM, false, NULL, ka, &info, &ms);
    CHECK(info.status == MIG_ST_FAILED && b.failed_called && !b.loaded_comp && a.running,
          "tls: a plaintext source is refused by a TLS destination (%s)", info.error);
    gmem_free(a.mm.mem);
    gmem_free(b.mm.mem);
    key_dir_free(ka);
    key_dir_free(kb);
}

/* GODWIT_MIG_BENCH_MB=N: MB/s of a live migration of N MiB of data, plain
 * and over TLS (docs/state.md, "TLS"). */
static void bench_tls(void)
{
    const char *env = getenv("GODWIT_MIG_BENCH_MB");
    uint64_t ram = env ? strtoull(env, NULL, 10) << 20 : 0;
    struct fake a, b;
    struct mig_info info;
    char ka[64];
    double ms;

    if (!ram)
        return;
    key_dir(ka, KEY_A);
    for (int rep = 0; rep < 2; rep++) {
        for (int tls = 0; tls < 2; tls++) {
            live_run(&a, &b, ram, true, tls ? ka : NULL, tls ? ka : NULL, &info, &ms);
            printf("# bench %s: %llu MiB in %.0f ms: %.0f MB/s (engine mbps %.0f)\n",
                   tls ? "TLS  " : "plain", (unsigned long long)(ram >> 20), ms,
                   (double)info.transferred / 1e6 / (ms / 1e3), info.mbps);
            CHECK(info.status == MIG_ST_COMPLETED && !memcmp(a.mm.mem->host, b.mm.mem->host, ram),
                  "bench: %s migration identical", tls ? "TLS" : "plain");
            gmem_free(a.mm.mem);
            gmem_free(b.mm.mem);
        }
    }
    key_dir_free(ka);
}

/* A peer that accepts and reads everything, never answering. */
struct sink {
    int lfd;
    _Atomic bool stop;
    pthread_t t;
};
static void *sink_thread(void *arg)
{
    struct sink *k = arg;
    char buf[65536];

    while (!atomic_load(&k->stop)) {
        int fd = mig_accept(k->lfd, 100, &k->stop);

        if (fd < 0)
            continue;
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
        close(fd);
    }
    return NULL;
}

/* Cancel at every moment: the job always ends cancelled, the machine runs. */
static void test_cancel_race(void)
{
    struct fake a;
    struct mig_params p;
    struct sink k = {.lfd = -1};
    struct mig_uri u;
    char sock[64], err[400] = "";
    unsigned stuck = 0, wrong = 0, tries = 300;

    fake_init(&a);
    fake_fill(&a, 3);
    snprintf(sock, sizeof(sock), "unix:/tmp/godwit-sink-%d.sock", getpid());
    if (mig_uri_parse(sock, false, &u, err, sizeof(err)) == 0)
        k.lfd = mig_listen(&u, err, sizeof(err));
    CHECK(k.lfd >= 0, "cancel: sink listens (%s)", err);
    pthread_create(&k.t, NULL, sink_thread, &k);
    mig_params_default(&p);
    for (unsigned i = 0; i < tries; i++) {
        struct mig_out *j = NULL;
        struct mig_info info;

        a.running = true;
        if (mig_out_start(&j, &a.mm, sock, &p, err, sizeof(err)) < 0) {
            wrong++;
            mig_out_free(j);
            continue;
        }
        for (unsigned t = 0; t < i % 20; t++) {
            mig_out_poll(j);
            usleep(100);
        }
        mig_out_cancel(j);
        if (!loop_out(&a, j, 5000))
            stuck++;
        mig_out_info(j, &info);
        if (info.status != MIG_ST_CANCELLED && info.status != MIG_ST_FAILED)
            wrong++;
        if (!a.running)
            wrong++;
        mig_out_free(j);
    }
    CHECK(stuck == 0, "cancel: %u of %u jobs stuck after migrate_cancel", stuck, tries);
    CHECK(wrong == 0, "cancel: %u of %u jobs ended wrong (status or machine not resumed)", wrong,
          tries);
    atomic_store(&k.stop, true);
    pthread_join(k.t, NULL);
    close(k.lfd);
    unlink(u.path);
    gmem_free(a.mm.mem);
}

/* Connect to the destination and play a hostile source. */
static int hostile_connect(const char *sock)
{
    struct mig_uri u;
    char err[256];

    if (mig_uri_parse(sock, false, &u, err, sizeof(err)) < 0)
        return -1;
    return mig_connect(&u, 2000, err, sizeof(err));
}

/* Run the destination's loop until it finishes or fails. */
static void loop_in(struct fake *b, struct mig_in *in, unsigned ms)
{
    for (unsigned t = 0; t < ms && !b->done_called && !b->failed_called; t++) {
        mig_in_poll(in);
        usleep(1000);
    }
}

/* A whole valid live stream of machine a, into a memory file; its length. */
static size_t live_stream(struct fake *a, int *fdp)
{
    int fd = memfd_create("live", MFD_CLOEXEC);
    struct state_stream *s = state_stream_new(fd, false);
    uint64_t n = 0, z = 0;

    (void)mig_save(&a->mm, s, STATE_F_LIVE, &n, &z, NULL);
    state_stream_flush(s);
    state_stream_free(s);
    *fdp = fd;
    return (size_t)lseek(fd, 0, SEEK_END);
}

static void send_all(int to, int from, size_t len)
{
    char buf[65536];
    size_t off = 0;

    while (off < len) {
        ssize_t r = pread(from, buf, sizeof(buf), (off_t)off);

        if (r <= 0 || write(to, buf, (size_t)r) != r)
            return;
        off += (size_t)r;
    }
}

static void test_hostile_sources(void)
{
    struct fake a, b;
    struct mig_in *in = NULL;
    char sock[64], err[400] = "";
    int fd, mem;
    size_t len;
    uint64_t t0;

    fake_init(&a);
    fake_fill(&a, 4);
    len = live_stream(&a, &mem);
    snprintf(sock, sizeof(sock), "unix:/tmp/godwit-hostile-%d.sock", getpid());

    /* 10 bytes, then silence: the destination gives up within its idle bound */
    fake_init(&b);
    CHECK(mig_in_start(&in, &b.mm, sock, NULL, err, sizeof(err)) == 0, "quiet: listens");
    fd = hostile_connect(sock);
    CHECK(fd >= 0 && write(fd, "\x89GWST\r\n\x1a\x01\x00", 10) == 10, "quiet: 10 bytes sent");
    t0 = gw_now_ns();
    loop_in(&b, in, 5000);
    CHECK(b.failed_called && !b.done_called, "quiet: the destination fails after %llu ms",
          (unsigned long long)((gw_now_ns() - t0) / 1000000));
    close(fd);
    mig_in_free(in);
    gmem_free(b.mm.mem);

    /* the stream twice: bytes after EOF are refused, nothing runs */
    fake_init(&b);
    CHECK(mig_in_start(&in, &b.mm, sock, NULL, err, sizeof(err)) == 0, "twice: listens");
    fd = hostile_connect(sock);
    send_all(fd, mem, len);
    send_all(fd, mem, len);
    (void)mig_msg_send(fd, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 0);
    loop_in(&b, in, 5000);
    CHECK(b.failed_called && !b.done_called, "twice: a stream followed by more bytes is refused");
    close(fd);
    mig_in_free(in);
    gmem_free(b.mm.mem);

    /* a valid stream, then a COMMIT claiming a pause of a year */
    fake_init(&b);
    CHECK(mig_in_start(&in, &b.mm, sock, NULL, err, sizeof(err)) == 0, "commit: listens");
    fd = hostile_connect(sock);
    send_all(fd, mem, len);
    {
        uint32_t type = 0;
        uint64_t v;

        CHECK(mig_msg_recv(fd, MIG_MAGIC_REPLY, &type, &v, 5000) == 0 && type == MIG_MSG_READY,
              "commit: the destination answers READY to a valid stream");
    }
    (void)mig_msg_send(fd, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 365ull * 86400 * 1000000000ull);
    loop_in(&b, in, 5000);
    CHECK(b.failed_called && !b.done_called,
          "commit: a pause longer than the migration is refused");
    close(fd);
    mig_in_free(in);
    gmem_free(b.mm.mem);

    /* and the same stream with an honest COMMIT runs */
    fake_init(&b);
    CHECK(mig_in_start(&in, &b.mm, sock, NULL, err, sizeof(err)) == 0, "honest: listens");
    fd = hostile_connect(sock);
    send_all(fd, mem, len);
    {
        uint32_t type = 0;
        uint64_t v;

        CHECK(mig_msg_recv(fd, MIG_MAGIC_REPLY, &type, &v, 5000) == 0 && type == MIG_MSG_READY,
              "honest: READY");
    }
    (void)mig_msg_send(fd, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 1000000);
    loop_in(&b, in, 5000);
    CHECK(b.done_called && b.paused_ns >= 1000000 && b.counter == a.counter,
          "honest: the destination runs with the component loaded");
    close(fd);
    mig_in_free(in);
    gmem_free(b.mm.mem);
    close(mem);
    gmem_free(a.mm.mem);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_file_roundtrip();
    test_file_targets();
    test_live();
    test_live_tls();
    test_live_refused();
    bench_tls();
    test_cancel_race();
    test_hostile_sources();
    return board_check_done();
}
