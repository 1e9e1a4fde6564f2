/*
 * Unit tests for TLS on the migration channel (src/migration/mig_tls.c)
 * over a socketpair: QEMU's keys.psk format (good, malformed, readable by
 * others), a PSK handshake, a wrong key and a plaintext peer refused, a
 * state stream and control messages carried through the session intact.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board_check.h"
#include "migration/mig_proto.h"
#include "migration/mig_tls.h"
#include "state/state_stream.h"

#define KEY_A "qemu:9d3c4f1a2b8e7f60c1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f50617283\n"
#define KEY_B "qemu:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

static char tmpdir[64];

/* A key directory holding text with mode; returns its path (static). */
static const char *key_dir(const char *name, const char *text, mode_t mode)
{
    static char dir[4][128];
    static unsigned n;
    char *d = dir[n++ % 4], path[192];
    FILE *f;

    snprintf(d, sizeof(dir[0]), "%s/%s", tmpdir, name);
    mkdir(d, 0700);
    snprintf(path, sizeof(path), "%s/keys.psk", d);
    f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
    return d;
}

struct side {
    const struct mig_tls_creds *creds;
    int fd;
    struct mig_tls *tls;
    char err[256];
    bool plaintext; /* write bytes in the clear instead of a handshake */
};

static void *side_open(void *arg)
{
    struct side *sd = arg;

    if (sd->plaintext) {
        static const char junk[] = "GODWIT state stream in the clear, no handshake at all....";

        (void)!write(sd->fd, junk, sizeof(junk));
        shutdown(sd->fd, SHUT_WR);
        return NULL;
    }
    sd->tls = mig_tls_open(sd->creds, sd->fd, 3000, sd->err, sizeof(sd->err));
    return NULL;
}

/* Shake hands between a client and a server over a socketpair. */
static void pair_open(struct side *cli, struct side *srv)
{
    int sv[2];
    pthread_t t;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        exit(1);
    }
    cli->fd = sv[0];
    srv->fd = sv[1];
    pthread_create(&t, NULL, side_open, cli);
    side_open(srv);
    if (!srv->tls && !srv->plaintext)
        shutdown(srv->fd, SHUT_RDWR); /* the client must not wait for its timeout */
    pthread_join(t, NULL);
}

static void pair_close(struct side *cli, struct side *srv)
{
    mig_tls_free(cli->tls);
    mig_tls_free(srv->tls);
    close(cli->fd);
    close(srv->fd);
    cli->tls = srv->tls = NULL;
}

static void test_key_files(void)
{
    char err[300];
    struct mig_tls_creds *c;

    c = mig_tls_creds_load(key_dir("good", "other:0011\n" KEY_A, 0600), false, err, sizeof(err));
    CHECK(c != NULL, "keys: QEMU's identity:hexkey file loads (%s)", c ? "" : err);
    mig_tls_creds_free(c);
    c = mig_tls_creds_load(key_dir("open", KEY_A, 0644), true, err, sizeof(err));
    CHECK(!c && strstr(err, "readable by others"), "keys: a world-readable file is refused (%s)",
          err);
    mig_tls_creds_free(c);
    c = mig_tls_creds_load(key_dir("bad", "qemu:12345\n", 0600), true, err, sizeof(err));
    CHECK(!c && strstr(err, "line 1"), "keys: an odd-length key is refused (%s)", err);
    c = mig_tls_creds_load(key_dir("bad2", "qemu 00112233\n", 0600), true, err, sizeof(err));
    CHECK(!c && strstr(err, "identity:hexkey"), "keys: a line without ':' is refused (%s)", err);
    c = mig_tls_creds_load(key_dir("bad3", "qemu:zz112233\n", 0600), true, err, sizeof(err));
    CHECK(!c, "keys: a non-hex key is refused (%s)", err);
    c = mig_tls_creds_load(key_dir("other", "bob:00112233\n", 0600), false, err, sizeof(err));
    CHECK(!c && strstr(err, "'qemu'"), "keys: a client without identity qemu is refused (%s)", err);
    c = mig_tls_creds_load("/nonexistent-dir", false, err, sizeof(err));
    CHECK(!c && strstr(err, "cannot open"), "keys: a missing file is refused (%s)", err);
}

/* Writer thread: a stream of len pseudo-random bytes through the session. */
struct writer {
    struct mig_tls *tls;
    size_t len;
    uint64_t digest;
    int err;
};

static void *writer_run(void *arg)
{
    struct writer *w = arg;
    struct state_stream *s = state_stream_new_io(&mig_tls_io, w->tls, false);
    uint8_t *buf = malloc(4 << 20); /* a write starts in the first MiB, is at most 3 */
    uint64_t x = 0x9e3779b97f4a7c15ull;

    for (size_t i = 0; i < (4u << 20); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    /* small writes (buffered) and large ones (past the buffer) */
    for (size_t off = 0; off < w->len;) {
        size_t n = (off / 7) % 3 == 0 ? 3u << 20 : 1 + off % 5000;

        if (n > w->len - off)
            n = w->len - off;
        state_stream_write(s, buf + off % (1u << 20), n);
        off += n;
    }
    state_stream_flush(s);
    w->digest = state_stream_digest(s);
    w->err = state_stream_error(s);
    state_stream_free(s);
    free(buf);
    return NULL;
}

static void test_sessions(void)
{
    char err[300];
    struct mig_tls_creds *ca = mig_tls_creds_load(key_dir("a", KEY_A, 0600), false, err, 300);
    struct mig_tls_creds *sa = mig_tls_creds_load(key_dir("a", KEY_A, 0600), true, err, 300);
    struct mig_tls_creds *cb = mig_tls_creds_load(key_dir("b", KEY_B, 0600), false, err, 300);
    struct side cli = {.creds = ca}, srv = {.creds = sa};
    uint32_t type;
    uint64_t value;

    if (!ca || !sa || !cb) {
        CHECK(0, "sessions: keys load (%s)", err);
        return;
    }
    pair_open(&cli, &srv);
    CHECK(cli.tls && srv.tls, "tls: PSK handshake succeeds (%s%s)", cli.err, srv.err);
    if (cli.tls && srv.tls) {
        struct writer w = {.tls = cli.tls, .len = 40u << 20};
        struct state_stream *s = state_stream_new_io(&mig_tls_io, srv.tls, true);
        uint8_t *buf = malloc(1 << 20);
        size_t got = 0;
        pthread_t t;

        printf("# %s\n", mig_tls_describe(cli.tls));
        CHECK(strstr(mig_tls_describe(cli.tls), "GCM") != NULL, "tls: AES-GCM (%s)",
              mig_tls_describe(cli.tls));
        pthread_create(&t, NULL, writer_run, &w);
        while (got < w.len && state_stream_error(s) == 0) {
            size_t n = w.len - got < (1u << 20) ? w.len - got : 1u << 20;

            state_stream_read(s, buf, n);
            got += n;
        }
        pthread_join(t, NULL);
        CHECK(w.err == 0 && state_stream_error(s) == 0 && w.digest == state_stream_digest(s),
              "tls: a 40 MiB stream reads back identically (checksums %016llx / %016llx)",
              (unsigned long long)w.digest, (unsigned long long)state_stream_digest(s));
        CHECK(state_stream_pending(s, 50) == 0, "tls: nothing pending after the stream");
        /* control messages on the same session */
        CHECK(mig_chan_send(&(struct mig_chan){srv.fd, srv.tls}, MIG_MAGIC_REPLY, MIG_MSG_READY,
                            7) == 0 &&
                  mig_chan_recv(&(struct mig_chan){cli.fd, cli.tls}, MIG_MAGIC_REPLY, &type, &value,
                                1000) == 0 &&
                  type == MIG_MSG_READY && value == 7,
              "tls: a control message travels on the session");
        CHECK(mig_chan_recv(&(struct mig_chan){cli.fd, cli.tls}, MIG_MAGIC_REPLY, &type, &value,
                            100) == -ETIMEDOUT,
              "tls: a control message wait times out");
        state_stream_free(s);
        free(buf);
    }
    pair_close(&cli, &srv);

    cli = (struct side){.creds = cb};
    srv = (struct side){.creds = sa};
    pair_open(&cli, &srv);
    CHECK(!cli.tls && !srv.tls, "tls: a wrong key fails the handshake (server: %s)", srv.err);
    pair_close(&cli, &srv);

    cli = (struct side){.plaintext = true};
    srv = (struct side){.creds = sa};
    pair_open(&cli, &srv);
    CHECK(!srv.tls && srv.err[0], "tls: a plaintext peer fails the handshake (%s)", srv.err);
    pair_close(&cli, &srv);

    mig_tls_creds_free(ca);
    mig_tls_creds_free(sa);
    mig_tls_creds_free(cb);
}

int main(void)
{
    char cmd[128];

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_mig_tls.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_key_files();
    test_sessions();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    (void)!system(cmd);
    return board_check_done();
}
