/*
 * The live-migration channel (docs/state.md, "live migration"): URIs,
 * sockets, and the commit protocol's control messages.
 *
 *   source ── state stream (header flag STATE_F_LIVE, RAM rounds, components, EOF) ──▶ destination
 *   source ◀── ROUND n (after each ROUND marker: the pipeline is drained) ──────────  destination
 *   source ◀── READY (everything loaded and verified) or ERROR ─────────────────────  destination
 *   source ── COMMIT (ns the source was paused) ──────────────────────────────────▶ destination
 *   source ◀── RUNNING ────────────────────────────────────────────────────────────  destination
 *
 * A recoverable stream that paused or lost its link resumes on a new
 * connection (docs/state.md, "pausing and resuming"):
 *
 *   source ── header (RESUME), CONFIG, SESSION (id, attempt) ─────────────────────▶ destination
 *   source ◀── RESUME_AT n (the last CHECKPOINT verified) or ERROR ─────────────────  destination
 *   source ── what came after checkpoint n and what was dirtied since, ... ───────▶ destination
 *
 * Control messages are 24 bytes, little-endian:
 *
 *   0       4       8               16              24
 *   ┌───────┬───────┬───────────────┬───────────────┐
 *   │ magic │ type  │ value         │ check         │
 *   └───────┴───────┴───────────────┴───────────────┘
 *   u32     u32     u64             u64 = XXH3-64 of bytes 0..15
 *
 * A message whose check fails, whose magic is not the one expected, or
 * whose type that magic does not carry is refused (-EPROTO): a flipped
 * byte in COMMIT's pause length must not move the guest's clock.  The
 * check catches corruption, not forgery (it has no key).
 *
 * ERROR carries the destination's reason, so the source can say why:
 *
 *   0                     24          24+len      24+len+8
 *   ┌─────────────────────┬───────────┬───────────┐
 *   │ ERROR message       │ reason    │ check     │
 *   └─────────────────────┴───────────┴───────────┘
 *   value = errno (bits 0..31) | len << 32       u64 = XXH3-64 of the reason,
 *   len <= MIG_REASON_MAX; len 0: no reason,     seeded with value
 *   nothing follows
 *
 * The reason is UTF-8 without a NUL.  A receiver refuses a length over
 * MIG_REASON_MAX, a short tail or a failed check (-EPROTO), and replaces
 * control characters and bytes that are not UTF-8 with '?': it ends up in
 * a log line and a JSON string.  An old source (len ignored) reads the
 * ERROR as before and closes; a new source reads an old ERROR (len 0) as
 * one without a reason.
 *
 * Frame forwarding (header flag STATE_F_NETFWD; docs/net.md, "The
 * switchover"): right after COMMIT the source sends the frames that reached
 * the VM's network ports while it was paused, then FRAMES_PAUSED, then
 * those that reach it during a grace period, then FWD_END:
 *   source ── COMMIT, FRAME..., FRAMES_PAUSED n, FRAME..., FWD_END n ─────────────▶ destination
 *   FRAME:  0                     24          24+len      24+len+8
 *           ┌─────────────────────┬───────────┬───────────┐
 *           │ message (GWFW)      │ frame     │ check     │
 *           └─────────────────────┴───────────┴───────────┘
 *           value = len | port << 32          u64 = XXH3-64 of the frame,
 *           len 14..MIG_FRAME_MAX,             seeded with value
 *           port < MIG_FRAME_PORTS
 * n is how many FRAMEs came before (in all, for FWD_END).  A destination
 * runs whatever the frames say: they are best effort, never a reason to
 * fail a migration that has committed.
 * Post-copy (header flag STATE_F_POSTCOPY: the stream may switch): the
 * source parks, sends the devices and EOF as for a switchover, and after
 * READY sends COMMIT_POSTCOPY instead of COMMIT, then MISSING (the pages
 * the destination does not hold as they are now: a bitmap), then frames as
 * above; the destination runs at once.  From then on:
 *   source ── PAGE p (+ 4096 bytes + check) / PAGE_ZERO p ... PAGES_END n ─▶ destination
 *   source ◀── PAGE_REQ p (a hart or a device waits for page p) ───────────  destination
 *   source ◀── PAGES_DONE (every page is here) ─────────────────────────────  destination
 *   MISSING: message (GWPG, value = pages) then the bitmap, (pages + 63) / 64
 *   u64 little-endian, then 8 bytes XXH3-64 of it seeded with value.  A
 *   PAGE's check is XXH3-64 of its 4096 bytes seeded with value.
 * Until the source has sent COMMIT it owns the VM: any failure resumes it.
 * After COMMIT it stays stopped, and a destination runs only once it has
 * read COMMIT: never two copies running.
 */
#ifndef GODWIT_MIGRATION_MIG_PROTO_H
#define GODWIT_MIGRATION_MIG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define MIG_MSG_LEN      24          /* bytes on the wire */
#define MIG_MSG_CHECKED  16          /* bytes the check covers: magic, type, value */
#define MIG_MAGIC_REPLY  0x50525747u /* "GWRP": destination -> source */
#define MIG_MAGIC_COMMIT 0x4d435747u /* "GWCM": source -> destination */
#define MIG_MAGIC_FRAME  0x57465747u /* "GWFW": source -> destination, after COMMIT */
#define MIG_MAGIC_PAGE   0x47505747u /* "GWPG": source -> destination, post-copy */
#define MIG_PAGE_SIZE    4096u       /* a post-copy page's bytes */
#define MIG_FRAME_MIN    14          /* an Ethernet header */
#define MIG_FRAME_MAX    65536       /* bytes of one forwarded frame, at most (NET_FRAME_MAX) */
#define MIG_FRAME_PORTS  64          /* network ports (netdevs) a frame can name */
#define MIG_REASON_MAX   512         /* bytes of an ERROR's reason, at most */
#define MIG_REASON_CHECK 8           /* the reason's check after it */
#define MIG_ERROR_MAX    (MIG_MSG_LEN + MIG_REASON_MAX + MIG_REASON_CHECK)

enum mig_msg_type {
    MIG_MSG_READY = 1,      /* reply: loaded and verified; value 0 */
    MIG_MSG_ERROR = 2,      /* reply: the load failed; value = errno | reason length << 32 */
    MIG_MSG_RUNNING = 3,    /* reply: the destination runs */
    MIG_MSG_ROUND = 4,      /* reply: every byte up to ROUND marker `value` was loaded */
    MIG_MSG_RESUME_AT = 5,  /* reply to a resumed stream's SESSION: the last CHECKPOINT verified */
    MIG_MSG_PAGE_REQ = 6,   /* reply, post-copy: value = a page the destination waits for */
    MIG_MSG_PAGES_DONE = 7, /* reply, post-copy: every page is here */
    MIG_MSG_COMMIT_POSTCOPY = 2, /* commit: as COMMIT, and post-copy follows (MISSING) */
    MIG_MSG_MISSING = 1,         /* page: value = pages; the bitmap and its check follow */
    MIG_MSG_PAGE = 2,            /* page: value = page number; 4096 bytes and a check follow */
    MIG_MSG_PAGE_ZERO = 3,       /* page: value = page number; the page is all zeroes */
    MIG_MSG_PAGES_END = 4,       /* page: value = PAGE and PAGE_ZERO messages in all */
    MIG_MSG_COMMIT = 1,          /* commit: value = ns the source was paused */
    MIG_MSG_FRAME = 1,         /* frame: value = len | port << 32; the frame and its check follow */
    MIG_MSG_FRAMES_PAUSED = 2, /* frame: the frames kept during the pause are over; value = n */
    MIG_MSG_FWD_END = 3,       /* frame: no more frames; value = n in all */
};

enum mig_uri_kind { MIG_URI_FILE, MIG_URI_TCP, MIG_URI_UNIX, MIG_URI_DEFER };

struct mig_uri {
    enum mig_uri_kind kind;
    char path[512]; /* file: and unix: */
    char host[256]; /* tcp: (brackets removed from IPv6 literals) */
    char port[16];
};

/* Parse "file:PATH", "tcp:HOST:PORT", "unix:PATH" or "defer" (only if
 * allow_defer).  PORT is a number in 0..65535 (0: any free port, for a
 * listener; stored in decimal).  0 or -EINVAL with a reason in err. */
int mig_uri_parse(const char *uri, bool allow_defer, struct mig_uri *u, char *err,
                  size_t errlen) gw_must_check;

/* Connect to a tcp:/unix: URI within timeout_ms.  Returns the fd (blocking,
 * CLOEXEC, TCP_NODELAY) or -errno with a reason. */
int mig_connect(const struct mig_uri *u, int timeout_ms, char *err, size_t errlen);

/* Listen on a tcp:/unix: URI (a stale unix socket file is replaced, a
 * live one refused).  Returns the listening fd (non-blocking) or -errno
 * with a reason. */
int mig_listen(const struct mig_uri *u, char *err, size_t errlen);

/* Accept one connection on lfd, waiting at most timeout_ms (-1: forever)
 * and giving up early when *cancel becomes true (polled every 100 ms).
 * Returns the connected fd (blocking) or -errno. */
int mig_accept(int lfd, int timeout_ms, const _Atomic bool *cancel);

/* Send / receive one control message.  recv waits at most timeout_ms and
 * checks the check field, the magic and the type; 0 or -errno
 * (-ETIMEDOUT, -EPIPE on EOF, -EPROTO). */
int mig_msg_send(int fd, uint32_t magic, uint32_t type, uint64_t value);
int mig_msg_recv(int fd, uint32_t magic, uint32_t *type, uint64_t *value, int timeout_ms);

/*
 * The channel the commit protocol talks on: the connected socket, or the
 * TLS session over it (tls non-NULL) that carries the state stream too.
 * mig_msg_send/recv above are the plain socket's case.
 */
struct mig_tls;
struct mig_chan {
    int fd;
    struct mig_tls *tls;
};
int mig_chan_send(const struct mig_chan *c, uint32_t magic, uint32_t type, uint64_t value);
int mig_chan_recv(const struct mig_chan *c, uint32_t magic, uint32_t *type, uint64_t *value,
                  int timeout_ms);

/* The same on a buffer (tests and tools): encode fills all MIG_MSG_LEN
 * bytes; decode checks as mig_msg_recv does, 0 or -EPROTO. */
void mig_msg_encode(uint8_t m[MIG_MSG_LEN], uint32_t magic, uint32_t type, uint64_t value);
int mig_msg_decode(const uint8_t m[MIG_MSG_LEN], uint32_t magic, uint32_t *type,
                   uint64_t *value) gw_must_check;

/* Send n bytes as they are on the channel (one write): 0 or -errno. */
int mig_chan_write(const struct mig_chan *c, const void *p, size_t n);
/* Wait until the channel has something to read: 1, 0 after timeout_ms, or -errno. */
int mig_chan_wait(const struct mig_chan *c, int timeout_ms);

/* A FRAME into out (MIG_MSG_LEN + len + 8 bytes): the bytes to send. */
size_t mig_frame_encode(uint8_t *out, unsigned port, const uint8_t *frame, size_t len);
/* Receive one GWFW message within timeout_ms: FRAMES_PAUSED and FWD_END
 * give *value; FRAME reads and checks its frame into buf (MIG_FRAME_MAX
 * bytes) and gives *port and *len.  0 or -errno (-EPROTO: a bad length,
 * port or check). */
int mig_chan_recv_frame(const struct mig_chan *c, uint32_t *type, uint64_t *value, unsigned *port,
                        uint8_t *buf, size_t *len, int timeout_ms);

/* A PAGE (MIG_MSG_LEN + 4096 + 8 bytes into out): the bytes to send. */
size_t mig_page_encode(uint8_t *out, uint64_t page, const uint8_t *data);
/* MISSING for npages pages (bitmap: (npages + 63) / 64 words) on the
 * channel: 0 or -errno. */
int mig_chan_send_missing(const struct mig_chan *c, const uint64_t *bitmap, uint64_t npages);

/*
 * After COMMIT the source sends frames (GWFW) and post-copy pages (GWPG)
 * interleaved: receive one message of either magic within timeout_ms.
 * FRAME: the frame into buf (MIG_FRAME_MAX), *port, *len; PAGE: its 4096
 * bytes into buf, checked, *len = 4096; MISSING: the bitmap into bitmap
 * (room for maxpages bits; more pages than that is -EPROTO), *len = its
 * bytes; others: *value only.  0 or -errno (-EPROTO: a bad length, port,
 * page or check).
 */
int mig_chan_recv_post(const struct mig_chan *c, uint32_t *magic, uint32_t *type, uint64_t *value,
                       unsigned *port, uint8_t *buf, size_t *len, uint64_t *bitmap,
                       uint64_t maxpages, int timeout_ms);

/* ERROR with a reason (above).  encode fills out (MIG_ERROR_MAX bytes)
 * and returns the bytes to send; a reason longer than MIG_REASON_MAX is cut
 * there (at a character boundary), NULL or "" sends none. */
size_t mig_msg_error_encode(uint8_t out[MIG_ERROR_MAX], int errnum, const char *reason);
/* The reason's length an ERROR's value announces (the bytes that follow
 * it are that plus MIG_REASON_CHECK, or none for 0): -EPROTO over
 * MIG_REASON_MAX. */
int mig_msg_reason_len(uint64_t value, size_t *len) gw_must_check;
/* The errno an ERROR's value carries (positive; EREMOTEIO if none). */
int mig_msg_error_errno(uint64_t value);
/* Check the n bytes that followed an ERROR of this value (reason and
 * check) and copy the reason into reason[reasonlen] (NUL-terminated, cut
 * at a character boundary), non-printable bytes and bytes that are not
 * UTF-8 replaced with '?'.  0, or -EPROTO (bad length, truncated, failed
 * check). */
int mig_msg_reason_decode(uint64_t value, const uint8_t *tail, size_t n, char *reason,
                          size_t reasonlen) gw_must_check;

/* Send ERROR with a reason on a channel (one write): 0 or -errno. */
int mig_chan_send_error(const struct mig_chan *c, int errnum, const char *reason);
/* After mig_chan_recv gave an ERROR of this value: read and check its
 * reason, within timeout_ms.  0 (reason "" if it had none) or -errno. */
int mig_chan_recv_reason(const struct mig_chan *c, uint64_t value, char *reason, size_t reasonlen,
                         int timeout_ms);

#endif
