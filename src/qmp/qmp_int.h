/*
 * QMP internals shared by qmp.c (sockets, clients), qmp_stream.c (framing)
 * and qmp_dispatch.c (request checks, built-in commands).  Not for users of
 * the library: they see qmp.h only.
 */
#ifndef GODWIT_QMP_QMP_INT_H
#define GODWIT_QMP_QMP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qmp/qmp.h"

#define QMP_MAX_DEPTH  1024u       /* nesting levels, as QEMU's json-streamer */
#define QMP_READ_CHUNK (16u << 10) /* bytes read from a socket at a time */
#define QMP_VAL_KEEP   (64u << 10) /* value buffer kept between requests */

/*
 * Framing: splits a byte stream into JSON values without parsing them.
 * It counts brackets outside strings (checking that they match), follows
 * strings and their escapes, and ends a top-level scalar at the next
 * delimiter.  Lexical errors (a control character, 0xFE/0xFF) end the
 * value being framed and start recovery, as QEMU's JSON lexer does.
 */
enum qmp_scan_state {
    QMP_SCAN_IDLE,      /* between values */
    QMP_SCAN_CONTAINER, /* inside {} or [], outside a string */
    QMP_SCAN_STRING,    /* inside a string (top-level when depth is 0) */
    QMP_SCAN_ESCAPE,    /* after a backslash in a string */
    QMP_SCAN_SCALAR,    /* a top-level number or literal */
    QMP_SCAN_RECOVER,   /* after an error: skipping to a resync point */
};

struct qmp_stream {
    enum qmp_scan_state state;
    unsigned depth;                  /* open brackets */
    uint8_t nest[QMP_MAX_DEPTH / 8]; /* bit per level: 1 '[' 0 '{' */
    char *val;                       /* bytes of the value being framed */
    size_t len, cap;                 /* bytes used / allocated in val */
    bool done;                       /* val holds a value already reported */
    char err[96];                    /* reason of the last QMP_STREAM_ERROR */
};

enum qmp_stream_event {
    QMP_STREAM_MORE,    /* every byte consumed, nothing complete */
    QMP_STREAM_VALUE,   /* val[0..len) is one complete value (maybe invalid JSON) */
    QMP_STREAM_ERROR,   /* malformed input, err says why; recovering */
    QMP_STREAM_TOO_BIG, /* a value reached QMP_MAX_REQUEST bytes */
    QMP_STREAM_NOMEM,
};

void qmp_stream_init(struct qmp_stream *st);
void qmp_stream_fini(struct qmp_stream *st);
/* Consume data until one event; *used says how many bytes were taken
 * (possibly 0 when a scalar ended at data[0]: call again). */
enum qmp_stream_event qmp_stream_feed(struct qmp_stream *st, const uint8_t *data, size_t len,
                                      size_t *used);

/* Dispatch (qmp_dispatch.c). */
struct qmp_cmd_entry {
    const char *name;
    qmp_handler_fn fn;
    bool builtin; /* handled by qmp_dispatch.c itself, fn unused */
    bool no_args; /* struct qmp_command's */
};

struct qmp_dispatch {
    struct qmp_cmd_entry *cmds;
    size_t ncmds;
    void *opaque;
    int major, minor, micro;
    const char *package;
};

int qmp_dispatch_init(struct qmp_dispatch *d, const struct qmp_server_config *cfg, char *err,
                      size_t errlen);
void qmp_dispatch_fini(struct qmp_dispatch *d);
/* The greeting sent on connect (a new reference). */
json_t *qmp_greeting(const struct qmp_dispatch *d);
/* Handle one framed value (text[0..len)): returns the reply object (a
 * new reference); *negotiated is the client's state, updated by
 * qmp_capabilities. */
json_t *qmp_dispatch_value(struct qmp_dispatch *d, const char *text, size_t len, bool *negotiated);
/* {"error": {"class": cls, "desc": desc}} plus "id" when id is not NULL. */
json_t *qmp_error_reply(const char *cls, const char *desc, json_t *id);

#endif
