/*
 * Unit tests for the migration channel (src/migration/mig_proto.c): URI
 * parsing, real sockets (unix and TCP on 127.0.0.1), accept with a timeout
 * and a cancel flag, and the 24-byte control messages of the commit
 * protocol, including hostile ones (wrong magic, unknown type, any flipped
 * bit, short, peer gone), and ERROR's reason (bounds, truncation, check,
 * bytes that are not printable UTF-8).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "board_check.h"
#include "migration/mig_proto.h"

static void test_uri(void)
{
    struct mig_uri u;
    char err[256];

    CHECK(mig_uri_parse("file:/tmp/x.state", false, &u, err, sizeof(err)) == 0 &&
              u.kind == MIG_URI_FILE && !strcmp(u.path, "/tmp/x.state"),
          "uri: file:");
    CHECK(mig_uri_parse("unix:/tmp/m.sock", false, &u, err, sizeof(err)) == 0 &&
              u.kind == MIG_URI_UNIX && !strcmp(u.path, "/tmp/m.sock"),
          "uri: unix:");
    CHECK(mig_uri_parse("tcp:10.1.2.3:4444", false, &u, err, sizeof(err)) == 0 &&
              u.kind == MIG_URI_TCP && !strcmp(u.host, "10.1.2.3") && !strcmp(u.port, "4444"),
          "uri: tcp:HOST:PORT");
    CHECK(mig_uri_parse("tcp:[::1]:5555", false, &u, err, sizeof(err)) == 0 &&
              !strcmp(u.host, "::1") && !strcmp(u.port, "5555"),
          "uri: tcp:[v6]:PORT");
    CHECK(mig_uri_parse("tcp::4444", false, &u, err, sizeof(err)) == 0 && u.host[0] == '\0',
          "uri: tcp::PORT (any host)");
    CHECK(mig_uri_parse("defer", true, &u, err, sizeof(err)) == 0 && u.kind == MIG_URI_DEFER,
          "uri: defer where allowed");
    CHECK(mig_uri_parse("defer", false, &u, err, sizeof(err)) == -EINVAL,
          "uri: defer refused for an outgoing migration");
    static const char *const bad[] = {"",
                                      "file:",
                                      "unix:",
                                      "tcp:",
                                      "tcp:host",
                                      "tcp:host:",
                                      "tcp:h:12x",
                                      "tcp:[::1:4",
                                      "exec:cat",
                                      "tcp:h:1234567890123456789",
                                      "fd:3",
                                      "tcp:127.0.0.1:99999",
                                      "tcp:h:65536",
                                      "tcp:h:-1",
                                      "tcp:h:+80",
                                      "tcp:h: 80",
                                      "tcp:[::1]:70000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(mig_uri_parse(bad[i], true, &u, err, sizeof(err)) == -EINVAL && err[0],
              "uri: '%s' refused (%s)", bad[i], err);
    }
    /* Ports: the whole range, and no wrapping modulo 65536. */
    CHECK(mig_uri_parse("tcp:127.0.0.1:99999", true, &u, err, sizeof(err)) == -EINVAL &&
              strstr(err, "0..65535"),
          "uri: port 99999 refused with a clear reason (%s)", err);
    CHECK(mig_uri_parse("tcp:h:65535", false, &u, err, sizeof(err)) == 0 &&
              !strcmp(u.port, "65535"),
          "uri: port 65535 accepted");
    CHECK(mig_uri_parse("tcp:h:0080", false, &u, err, sizeof(err)) == 0 && !strcmp(u.port, "80"),
          "uri: leading zeros: port 80");
    CHECK(mig_uri_parse("tcp:127.0.0.1:0", true, &u, err, sizeof(err)) == 0 && !strcmp(u.port, "0"),
          "uri: port 0 (any port, for a listener) parses");
    CHECK(mig_connect(&u, 1000, err, sizeof(err)) == -EINVAL && strstr(err, "1..65535"),
          "connect: port 0 refused with a reason (%s)", err);
    char longp[700];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "unix:/", 6);
    longp[sizeof(longp) - 1] = '\0';
    CHECK(mig_uri_parse(longp, false, &u, err, sizeof(err)) == -EINVAL,
          "uri: a unix path longer than sun_path is refused");
}

/* A connected pair through a real listening socket. */
static int pair_via(const struct mig_uri *u, int *srv, int *cli)
{
    char err[256];
    int lfd = mig_listen(u, err, sizeof(err));

    if (lfd < 0) {
        printf("     listen: %s\n", err);
        return -1;
    }
    *cli = mig_connect(u, 2000, err, sizeof(err));
    if (*cli < 0) {
        printf("     connect: %s\n", err);
        close(lfd);
        return -1;
    }
    *srv = mig_accept(lfd, 2000, NULL);
    close(lfd);
    return *srv < 0 ? -1 : 0;
}

static void test_messages(int a, int b, const char *what)
{
    uint32_t type;
    uint64_t value;

    CHECK(mig_msg_send(a, MIG_MAGIC_REPLY, MIG_MSG_READY, 0x1122334455667788ull) == 0 &&
              mig_msg_recv(b, MIG_MAGIC_REPLY, &type, &value, 1000) == 0 && type == MIG_MSG_READY &&
              value == 0x1122334455667788ull,
          "%s: READY round trip with a 64-bit value", what);
    CHECK(mig_msg_send(b, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 42) == 0 &&
              mig_msg_recv(a, MIG_MAGIC_COMMIT, &type, &value, 1000) == 0 && value == 42,
          "%s: COMMIT the other way", what);
    CHECK(mig_msg_send(a, MIG_MAGIC_REPLY, MIG_MSG_RUNNING, 0) == 0 &&
              mig_msg_recv(b, MIG_MAGIC_COMMIT, &type, &value, 1000) == -EPROTO,
          "%s: a message with the wrong magic is refused", what);
    CHECK(mig_msg_recv(b, MIG_MAGIC_REPLY, &type, &value, 100) == -ETIMEDOUT,
          "%s: nothing sent: -ETIMEDOUT", what);
    /* a message in two halves still arrives whole */
    uint8_t m[MIG_MSG_LEN];
    mig_msg_encode(m, MIG_MAGIC_REPLY, MIG_MSG_ROUND, 7);
    CHECK(write(a, m, 5) == 5 && write(a, m + 5, sizeof(m) - 5) == (ssize_t)sizeof(m) - 5 &&
              mig_msg_recv(b, MIG_MAGIC_REPLY, &type, &value, 1000) == 0 && type == MIG_MSG_ROUND &&
              value == 7,
          "%s: a message split in two writes", what);
    /* corruption on the way: a flipped bit in the pause length */
    uint8_t bad[MIG_MSG_LEN];
    mig_msg_encode(bad, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 5000000);
    bad[8 + 7] ^= 0x10;
    CHECK(write(a, bad, sizeof(bad)) == (ssize_t)sizeof(bad) &&
              mig_msg_recv(b, MIG_MAGIC_COMMIT, &type, &value, 1000) == -EPROTO,
          "%s: a COMMIT with a flipped bit in its value is refused", what);
    CHECK(mig_msg_send(a, MIG_MAGIC_REPLY, 99, 0) == 0 &&
              mig_msg_recv(b, MIG_MAGIC_REPLY, &type, &value, 1000) == -EPROTO,
          "%s: an unknown type (checked, well-formed) is refused", what);
    CHECK(mig_msg_send(a, MIG_MAGIC_COMMIT, MIG_MSG_ROUND, 0) == 0 &&
              mig_msg_recv(b, MIG_MAGIC_COMMIT, &type, &value, 1000) == -EPROTO,
          "%s: a reply type under the COMMIT magic is refused", what);
    CHECK(mig_msg_send(a, MIG_MAGIC_REPLY, MIG_MSG_RUNNING, 3) == 0 &&
              mig_msg_recv(b, MIG_MAGIC_REPLY, &type, &value, 1000) == 0 &&
              type == MIG_MSG_RUNNING && value == 3,
          "%s: the channel is still in step after refused messages", what);
    /* the peer sends half a message and leaves */
    CHECK(write(a, m, 9) == 9, "%s: half a message written", what);
    close(a);
    CHECK(mig_msg_recv(b, MIG_MAGIC_REPLY, &type, &value, 1000) == -EPIPE,
          "%s: peer gone mid-message: -EPIPE", what);
    CHECK(mig_msg_send(b, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 1) < 0 ||
              mig_msg_send(b, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 1) < 0,
          "%s: sending to a closed peer fails (no SIGPIPE)", what);
    close(b);
}

/* Every single-bit flip anywhere in a message is caught, and so is every
 * wrong magic and unknown type. */
static void test_integrity(void)
{
    static const uint64_t values[] = {0, 1, 42, 5000000, UINT64_MAX};
    static const struct {
        uint32_t magic, type;
    } ok[] = {{MIG_MAGIC_REPLY, MIG_MSG_READY},    {MIG_MAGIC_REPLY, MIG_MSG_ERROR},
              {MIG_MAGIC_REPLY, MIG_MSG_RUNNING},  {MIG_MAGIC_REPLY, MIG_MSG_ROUND},
              {MIG_MAGIC_COMMIT, MIG_MSG_COMMIT},  {MIG_MAGIC_COMMIT, MIG_MSG_COMMIT_POSTCOPY},
              {MIG_MAGIC_REPLY, MIG_MSG_PAGE_REQ}, {MIG_MAGIC_REPLY, MIG_MSG_PAGES_DONE},
              {MIG_MAGIC_PAGE, MIG_MSG_PAGE},      {MIG_MAGIC_PAGE, MIG_MSG_PAGES_END}};
    unsigned caught = 0, tried = 0, decoded = 0;
    uint8_t m[MIG_MSG_LEN];
    uint32_t type;
    uint64_t value;

    for (size_t k = 0; k < GW_ARRAY_SIZE(ok); k++) {
        for (size_t v = 0; v < GW_ARRAY_SIZE(values); v++) {
            mig_msg_encode(m, ok[k].magic, ok[k].type, values[v]);
            if (mig_msg_decode(m, ok[k].magic, &type, &value) == 0 && type == ok[k].type &&
                value == values[v])
                decoded++;
            for (unsigned bit = 0; bit < MIG_MSG_LEN * 8; bit++) {
                m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                tried++;
                caught += mig_msg_decode(m, ok[k].magic, &type, &value) == -EPROTO;
                m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
        }
    }
    CHECK(decoded == GW_ARRAY_SIZE(ok) * GW_ARRAY_SIZE(values),
          "integrity: every valid message decodes (%u)", decoded);
    CHECK(caught == tried, "integrity: %u of %u single-bit flips refused", caught, tried);
    /* a message and its check both rewritten (a forger, or another
     * program's bytes that happen to check): type and magic still vetted */
    static const struct {
        uint32_t magic, type;
    } bad[] = {{MIG_MAGIC_REPLY, 0},
               {MIG_MAGIC_REPLY, MIG_MSG_PAGES_DONE + 1},
               {MIG_MAGIC_REPLY, UINT32_MAX},
               {MIG_MAGIC_COMMIT, 0},
               {MIG_MAGIC_COMMIT, MIG_MSG_COMMIT_POSTCOPY + 1},
               {MIG_MAGIC_PAGE, 0},
               {MIG_MAGIC_PAGE, MIG_MSG_PAGES_END + 1}};
    for (size_t k = 0; k < GW_ARRAY_SIZE(bad); k++) {
        mig_msg_encode(m, bad[k].magic, bad[k].type, 0);
        CHECK(mig_msg_decode(m, bad[k].magic, &type, &value) == -EPROTO,
              "integrity: magic %08x type %u refused", bad[k].magic, bad[k].type);
    }
    mig_msg_encode(m, MIG_MAGIC_REPLY, MIG_MSG_READY, 0);
    CHECK(mig_msg_decode(m, MIG_MAGIC_COMMIT, &type, &value) == -EPROTO,
          "integrity: a reply where a COMMIT is expected is refused");
    memset(m, 0, sizeof(m));
    CHECK(mig_msg_decode(m, MIG_MAGIC_REPLY, &type, &value) == -EPROTO,
          "integrity: all zeros refused");
}

static void test_reason(void)
{
    uint8_t m[MIG_ERROR_MAX], tail[MIG_REASON_MAX + 1 + MIG_REASON_CHECK];
    char reason[MIG_REASON_MAX + 1], big[MIG_REASON_MAX + 100];
    const char *why = "the state was saved by a differently configured machine: saved "
                      "'ram=67108864', this machine 'ram=134217728'";
    uint32_t type;
    uint64_t value;
    size_t n, len;

    /* round trip */
    n = mig_msg_error_encode(m, EINVAL, why);
    CHECK(n == MIG_MSG_LEN + strlen(why) + MIG_REASON_CHECK, "reason: encoded length %zu", n);
    CHECK(mig_msg_decode(m, MIG_MAGIC_REPLY, &type, &value) == 0 && type == MIG_MSG_ERROR &&
              mig_msg_error_errno(value) == EINVAL && mig_msg_reason_len(value, &len) == 0 &&
              len == strlen(why),
          "reason: the message says ERROR, EINVAL and the length");
    CHECK(mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN, reason, sizeof(reason)) ==
                  0 &&
              !strcmp(reason, why),
          "reason: decodes as sent (%s)", reason);
    /* none: an old-style ERROR */
    n = mig_msg_error_encode(m, EIO, NULL);
    CHECK(n == MIG_MSG_LEN && mig_msg_decode(m, MIG_MAGIC_REPLY, &type, &value) == 0 &&
              value == EIO && mig_msg_reason_len(value, &len) == 0 && len == 0 &&
              mig_msg_reason_decode(value, NULL, 0, reason, sizeof(reason)) == 0 && !reason[0],
          "reason: none is the old 24-byte ERROR, value = errno");
    CHECK(mig_msg_error_errno(0) == EREMOTEIO, "reason: errno 0 reads as EREMOTEIO");
    /* bounds: over MIG_REASON_MAX refused, before anything is read */
    CHECK(mig_msg_reason_len(5 | (uint64_t)(MIG_REASON_MAX + 1) << 32, &len) == -EPROTO &&
              mig_msg_reason_len(5 | 0xffffffffull << 32, &len) == -EPROTO,
          "reason: a length over %d refused", MIG_REASON_MAX);
    CHECK(mig_msg_reason_decode(5 | (uint64_t)(MIG_REASON_MAX + 1) << 32, tail,
                                MIG_REASON_MAX + 1 + MIG_REASON_CHECK, reason,
                                sizeof(reason)) == -EPROTO,
          "reason: decode refuses a length over the bound too");
    /* a long reason is cut at the bound, on a character boundary */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big + MIG_REASON_MAX - 1, "\xc3\xa9", 2); /* é across the bound */
    n = mig_msg_error_encode(m, EINVAL, big);
    CHECK(mig_msg_decode(m, MIG_MAGIC_REPLY, &type, &value) == 0 &&
              mig_msg_reason_len(value, &len) == 0 && len == MIG_REASON_MAX - 1 &&
              mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN, reason,
                                    sizeof(reason)) == 0 &&
              strlen(reason) == MIG_REASON_MAX - 1,
          "reason: a long one cut before a character across the bound (%zu)", len);
    /* truncated, too long, corrupted */
    n = mig_msg_error_encode(m, EINVAL, why);
    value = gw_get_le(m + 8, 8);
    CHECK(mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN - 1, reason,
                                sizeof(reason)) == -EPROTO &&
              mig_msg_reason_decode(value, m + MIG_MSG_LEN, strlen(why), reason, sizeof(reason)) ==
                  -EPROTO,
          "reason: a truncated reason (or one without its check) refused");
    CHECK(mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN + 1, reason,
                                sizeof(reason)) == -EPROTO,
          "reason: more bytes than announced refused");
    unsigned caught = 0, tried = 0;
    for (size_t bit = 0; bit < (n - MIG_MSG_LEN) * 8; bit++) {
        m[MIG_MSG_LEN + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        caught += mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN, reason,
                                        sizeof(reason)) == -EPROTO;
        m[MIG_MSG_LEN + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tried++;
    }
    CHECK(caught == tried, "reason: %u of %u single-bit flips in reason or check refused", caught,
          tried);
    CHECK(mig_msg_reason_decode(value ^ 1, m + MIG_MSG_LEN, n - MIG_MSG_LEN, reason,
                                sizeof(reason)) == -EPROTO,
          "reason: the check binds it to its ERROR's value");
    /* non-printable and not UTF-8: replaced, valid UTF-8 kept */
    static const struct {
        const char *in, *out;
    } clean[] = {
        {"a\nb\tc\x1b[31m", "a?b?c?[31m"},
        {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"}, /* é €: kept */
        {"x\xc2\x85y\x7fz", "x?y?z"},                             /* C1 NEL, DEL */
        {"\xff\xfe ok", "?\? ok"},                                /* not UTF-8 */
        {"\xc0\xaf/", "?\?/"},                                    /* overlong '/' */
        {"\xed\xa0\x80!", "?\?\?!"},                              /* a surrogate */
        {"cut \xe2\x82", "cut ?\?"},                              /* cut short */
    };
    for (size_t k = 0; k < GW_ARRAY_SIZE(clean); k++) {
        n = mig_msg_error_encode(m, EPROTO, clean[k].in);
        value = gw_get_le(m + 8, 8);
        CHECK(mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN, reason,
                                    sizeof(reason)) == 0 &&
                  !strcmp(reason, clean[k].out),
              "reason: sanitised %zu: '%s'", k, reason);
    }
    /* a small buffer: cut on a character boundary, NUL-terminated */
    char small[6];
    n = mig_msg_error_encode(m, EPROTO,
                             "abcd\xc3\xa9"
                             "f");
    value = gw_get_le(m + 8, 8);
    CHECK(mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN, small, sizeof(small)) ==
                  0 &&
              !strcmp(small, "abcd"),
          "reason: a small buffer gets whole characters only ('%s')", small);
}

/* ERROR with a reason over a socket: whole, split, then a peer that leaves
 * half-way through the reason. */
static void test_reason_channel(int a, int b, const char *what)
{
    struct mig_chan ca = {.fd = a}, cb = {.fd = b};
    char reason[MIG_REASON_MAX + 1];
    uint8_t m[MIG_ERROR_MAX];
    uint32_t type;
    uint64_t value;
    size_t n;

    CHECK(mig_chan_send_error(&ca, EPROTO, "checksum mismatch") == 0 &&
              mig_chan_recv(&cb, MIG_MAGIC_REPLY, &type, &value, 1000) == 0 &&
              type == MIG_MSG_ERROR &&
              mig_chan_recv_reason(&cb, value, reason, sizeof(reason), 1000) == 0 &&
              !strcmp(reason, "checksum mismatch"),
          "%s: ERROR with its reason round trip", what);
    CHECK(mig_chan_send(&ca, MIG_MAGIC_REPLY, MIG_MSG_ERROR, EIO) == 0 &&
              mig_chan_recv(&cb, MIG_MAGIC_REPLY, &type, &value, 1000) == 0 &&
              mig_chan_recv_reason(&cb, value, reason, sizeof(reason), 100) == 0 && !reason[0],
          "%s: an old-style ERROR: no reason, nothing waited for", what);
    n = mig_msg_error_encode(m, EPROTO, "the source went away");
    CHECK(write(a, m, n - 3) == (ssize_t)(n - 3), "%s: a reason without its last bytes", what);
    CHECK(mig_chan_recv(&cb, MIG_MAGIC_REPLY, &type, &value, 1000) == 0 &&
              mig_chan_recv_reason(&cb, value, reason, sizeof(reason), 200) == -ETIMEDOUT,
          "%s: a reason that stops short times out", what);
    close(a);
    CHECK(mig_chan_recv(&cb, MIG_MAGIC_REPLY, &type, &value, 200) == -EPIPE,
          "%s: then the peer's close reads as -EPIPE", what);
    close(b);
}

static void test_sockets(void)
{
    struct mig_uri u;
    char err[256], path[64];
    int srv = -1, cli = -1, lfd;
    _Atomic bool cancel = false;

    snprintf(path, sizeof(path), "unix:/tmp/godwit-mig-proto-%d.sock", (int)getpid());
    CHECK(mig_uri_parse(path, false, &u, err, sizeof(err)) == 0, "unix uri");
    CHECK(pair_via(&u, &srv, &cli) == 0, "unix: listen, connect, accept");
    if (srv >= 0 && cli >= 0)
        test_messages(cli, srv, "unix");
    /* a stale socket file is replaced */
    lfd = mig_listen(&u, err, sizeof(err));
    CHECK(lfd >= 0, "unix: listening again over the stale socket file (%s)", lfd < 0 ? err : "");
    /* a live one is not taken over: two destinations on one path */
    CHECK(mig_listen(&u, err, sizeof(err)) == -EADDRINUSE && strstr(err, "already listening"),
          "unix: a live socket file is refused (%s)", err);
    if (lfd >= 0)
        close(lfd);
    unlink(u.path);

    CHECK(mig_uri_parse("tcp:127.0.0.1:0", false, &u, err, sizeof(err)) == 0, "tcp uri");
    /* port 0: find the port the kernel picked */
    lfd = mig_listen(&u, err, sizeof(err));
    CHECK(lfd >= 0, "tcp: listen on 127.0.0.1:0");
    if (lfd >= 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        getsockname(lfd, (struct sockaddr *)&ss, &sl);
        snprintf(u.port, sizeof(u.port), "%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
        cli = mig_connect(&u, 2000, err, sizeof(err));
        srv = cli >= 0 ? mig_accept(lfd, 2000, NULL) : -1;
        CHECK(cli >= 0 && srv >= 0, "tcp: connect and accept on port %s", u.port);
        if (cli >= 0 && srv >= 0)
            test_messages(cli, srv, "tcp");
        /* accept: timeout, then cancel */
        CHECK(mig_accept(lfd, 200, NULL) == -ETIMEDOUT, "accept: -ETIMEDOUT with nobody coming");
        atomic_store(&cancel, true);
        CHECK(mig_accept(lfd, -1, &cancel) == -ECANCELED, "accept: a cancel flag ends the wait");
        close(lfd);
        /* nobody listens any more */
        cli = mig_connect(&u, 1000, err, sizeof(err));
        CHECK(cli < 0 && strstr(err, "connect to tcp:"), "connect: refused, with a reason (%s)",
              err);
        if (cli >= 0)
            close(cli);
    }
    CHECK(mig_uri_parse("unix:/nonexistent-dir/x.sock", false, &u, err, sizeof(err)) == 0 &&
              mig_listen(&u, err, sizeof(err)) < 0 && err[0],
          "listen: an impossible path fails with a reason (%s)", err);
}

/* Forwarded frames (STATE_F_NETFWD): FRAME with its frame and check,
 * FRAMES_PAUSED, FWD_END; a wrong length, port or check is refused. */
static void test_frames(int a, int b)
{
    struct mig_chan ca = {.fd = a}, cb = {.fd = b};
    static uint8_t frame[1514], m[MIG_MSG_LEN + MIG_FRAME_MAX + 8], got[MIG_FRAME_MAX];
    uint32_t type;
    uint64_t value;
    unsigned port;
    size_t n, len;

    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = (uint8_t)(i * 7);
    n = mig_frame_encode(m, 3, frame, sizeof(frame));
    CHECK(n == MIG_MSG_LEN + sizeof(frame) + 8 && mig_chan_write(&ca, m, n) == 0 &&
              mig_chan_send(&ca, MIG_MAGIC_FRAME, MIG_MSG_FRAMES_PAUSED, 1) == 0,
          "frames: a FRAME and FRAMES_PAUSED sent");
    CHECK(mig_chan_wait(&cb, 1000) == 1, "frames: the channel is readable");
    CHECK(mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == 0 &&
              type == MIG_MSG_FRAME && port == 3 && len == sizeof(frame) &&
              !memcmp(got, frame, len),
          "frames: FRAME round trips (port 3, 1514 bytes)");
    CHECK(mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == 0 &&
              type == MIG_MSG_FRAMES_PAUSED && value == 1,
          "frames: then FRAMES_PAUSED 1");
    CHECK(mig_chan_wait(&cb, 50) == 0, "frames: nothing more to read");
    /* a flipped byte in the frame: the check fails */
    n = mig_frame_encode(m, 0, frame, 60);
    m[MIG_MSG_LEN + 20] ^= 1;
    CHECK(mig_chan_write(&ca, m, n) == 0 &&
              mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == -EPROTO,
          "frames: a flipped byte is refused");
    /* a length past the limit, a port past the limit: refused before reading on */
    mig_msg_encode(m, MIG_MAGIC_FRAME, MIG_MSG_FRAME, (uint64_t)MIG_FRAME_MAX + 1);
    CHECK(mig_chan_write(&ca, m, MIG_MSG_LEN) == 0 &&
              mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == -EPROTO,
          "frames: a frame longer than MIG_FRAME_MAX is refused");
    mig_msg_encode(m, MIG_MAGIC_FRAME, MIG_MSG_FRAME, 60 | (uint64_t)MIG_FRAME_PORTS << 32);
    CHECK(mig_chan_write(&ca, m, MIG_MSG_LEN) == 0 &&
              mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == -EPROTO,
          "frames: a port past MIG_FRAME_PORTS is refused");
    mig_msg_encode(m, MIG_MAGIC_FRAME, MIG_MSG_FRAME, 10);
    CHECK(mig_chan_write(&ca, m, MIG_MSG_LEN) == 0 &&
              mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == -EPROTO,
          "frames: a frame shorter than an Ethernet header is refused");
    /* a COMMIT where a frame message belongs */
    CHECK(mig_chan_send(&ca, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, 1) == 0 &&
              mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == -EPROTO,
          "frames: another magic is refused");
    CHECK(mig_chan_send(&ca, MIG_MAGIC_FRAME, MIG_MSG_FWD_END, 7) == 0 &&
              mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 1000) == 0 &&
              type == MIG_MSG_FWD_END && value == 7,
          "frames: FWD_END with its count");
    close(a);
    CHECK(mig_chan_recv_frame(&cb, &type, &value, &port, got, &len, 200) == -EPIPE,
          "frames: the source's close reads as -EPIPE");
    close(b);
}

/* Post-copy's messages: MISSING (a bitmap), PAGE, PAGE_ZERO, PAGES_END,
 * interleaved with frames; a page past RAM, a bitmap for another RAM size
 * or with bits past its end, a flipped byte: refused. */
static void test_postcopy_msgs(void)
{
    int sv[2] = {-1, -1}, a, b;
    struct mig_chan ca, cb;
    static uint8_t page[MIG_PAGE_SIZE], m[MIG_MSG_LEN + MIG_FRAME_MAX + 8], buf[MIG_FRAME_MAX];
    uint64_t bits[2] = {0x8000000000000001ull, 0x5}, got[2];
    uint32_t magic, type;
    uint64_t value;
    unsigned port;
    size_t len;

    for (size_t i = 0; i < sizeof(page); i++)
        page[i] = (uint8_t)(i * 13);
#define PC_PAIR()                                                                                  \
    do {                                                                                           \
        if (sv[0] >= 0)                                                                            \
            close(sv[0]), close(sv[1]);                                                            \
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");                         \
        a = sv[0], b = sv[1], ca = (struct mig_chan){.fd = a}, cb = (struct mig_chan){.fd = b};    \
    } while (0)
    PC_PAIR();
    CHECK(mig_chan_send_missing(&ca, bits, 67) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, got, 67, 1000) ==
                  0 &&
              magic == MIG_MAGIC_PAGE && type == MIG_MSG_MISSING && value == 67 &&
              got[0] == bits[0] && got[1] == bits[1],
          "post-copy: MISSING round trips (67 pages)");
    PC_PAIR(); /* a refusal ends the stream: what follows is not read */
    CHECK(mig_chan_send_missing(&ca, bits, 67) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, got, 64, 1000) ==
                  -EPROTO,
          "post-copy: MISSING for another RAM size is refused");
    PC_PAIR();
    bits[1] = 0x10; /* bit 68 of a 67-page RAM */
    CHECK(mig_chan_send_missing(&ca, bits, 67) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, got, 67, 1000) ==
                  -EPROTO,
          "post-copy: MISSING with a bit past the last page is refused");
    PC_PAIR();
    CHECK(
        mig_chan_write(&ca, m, mig_page_encode(m, 66, page)) == 0 &&
            mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, NULL, 67, 1000) == 0 &&
            type == MIG_MSG_PAGE && value == 66 && len == MIG_PAGE_SIZE && !memcmp(buf, page, len),
        "post-copy: PAGE round trips");
    CHECK(mig_chan_write(&ca, m, mig_frame_encode(m, 1, page, 100)) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, NULL, 67, 1000) ==
                  0 &&
              magic == MIG_MAGIC_FRAME && type == MIG_MSG_FRAME && port == 1 && len == 100,
          "post-copy: a frame between pages");
    CHECK(mig_chan_write(&ca, m, mig_page_encode(m, 67, page)) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, NULL, 67, 1000) ==
                  -EPROTO,
          "post-copy: a PAGE past RAM is refused");
    PC_PAIR();
    mig_page_encode(m, 3, page);
    m[MIG_MSG_LEN + 100] ^= 4;
    CHECK(mig_chan_write(&ca, m, MIG_MSG_LEN + MIG_PAGE_SIZE + 8) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, NULL, 67, 1000) ==
                  -EPROTO,
          "post-copy: a PAGE with a flipped byte is refused");
    PC_PAIR();
    CHECK(mig_chan_send(&ca, MIG_MAGIC_PAGE, MIG_MSG_PAGE_ZERO, 5) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, NULL, 67, 1000) ==
                  0 &&
              type == MIG_MSG_PAGE_ZERO && value == 5,
          "post-copy: PAGE_ZERO");
    CHECK(mig_chan_send(&ca, MIG_MAGIC_PAGE, MIG_MSG_PAGES_END, 9) == 0 &&
              mig_chan_recv_post(&cb, &magic, &type, &value, &port, buf, &len, NULL, 67, 1000) ==
                  0 &&
              type == MIG_MSG_PAGES_END && value == 9,
          "post-copy: PAGES_END");
    close(a);
    close(b);
#undef PC_PAIR
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_uri();
    test_integrity();
    test_reason();
    test_sockets();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    test_reason_channel(sv[0], sv[1], "socketpair");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    test_frames(sv[0], sv[1]);
    test_postcopy_msgs();
    return board_check_done();
}
