/*
 * QMP framing: finds where each JSON value of a client's byte stream ends,
 * so that jansson parses exactly one value at a time, however the bytes
 * were split across reads.  Nothing is parsed here; only brackets, strings
 * and their escapes are followed (and brackets checked to match, so that
 * "{]" fails at once instead of swallowing the next requests).
 *
 * Recovery follows QEMU's JSON lexer (qobject/json-lexer.c): a lexical
 * error (a control character other than tab/CR/LF outside strings, any
 * control character inside a string, the bytes 0xFE/0xFF that UTF-8 never
 * uses) or a bracket error drops the partial value, and input is skipped up
 * to the next '{' or '[' (kept: it starts the next value), newline, other
 * control character or 0xFE/0xFF (consumed).  So a client that lost track
 * can reset the server's parser by sending a newline or 0xFF, as the QMP
 * spec advises (qmp-spec, "Forcing the JSON parser into known-good state").
 *
 * The value buffer is bounded by QMP_MAX_REQUEST; whitespace between
 * values is never stored.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_int.h"

void qmp_stream_init(struct qmp_stream *st)
{
    memset(st, 0, sizeof(*st));
    st->state = QMP_SCAN_IDLE;
}

void qmp_stream_fini(struct qmp_stream *st)
{
    free(st->val);
    st->val = NULL;
    st->len = st->cap = 0;
}

static bool is_ws(uint8_t b)
{
    return b == ' ' || b == '\t' || b == '\n' || b == '\r';
}

/* A byte that no JSON token may hold outside a string. */
static bool is_bad_outside(uint8_t b)
{
    return (b < 0x20 && !is_ws(b)) || b >= 0xFE;
}

/* A byte that ends a top-level scalar (not part of it). */
static bool ends_scalar(uint8_t b)
{
    return is_ws(b) || is_bad_outside(b) || b == '{' || b == '}' || b == '[' || b == ']' ||
           b == '"';
}

/* Append one byte; false when the value would pass QMP_MAX_REQUEST. */
static int stream_put(struct qmp_stream *st, uint8_t b)
{
    if (st->len >= QMP_MAX_REQUEST)
        return -E2BIG;
    if (st->len == st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 256;
        char *n;
        if (ncap > QMP_MAX_REQUEST)
            ncap = QMP_MAX_REQUEST;
        n = realloc(st->val, ncap);
        if (!n)
            return -ENOMEM;
        st->val = n;
        st->cap = ncap;
    }
    st->val[st->len++] = (char)b;
    return 0;
}

/* Start recovery after an error; the caller reports st->err. */
static enum qmp_stream_event stream_error(struct qmp_stream *st, const char *fmt, ...)
    gw_printf(2, 3);
static enum qmp_stream_event stream_error(struct qmp_stream *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->err, sizeof(st->err), fmt, ap);
    va_end(ap);
    st->state = QMP_SCAN_RECOVER;
    st->depth = 0;
    st->len = 0;
    return QMP_STREAM_ERROR;
}

/* Drop a big buffer once its value is done, so an idle client holds little. */
static void stream_trim(struct qmp_stream *st)
{
    st->len = 0;
    if (st->cap > QMP_VAL_KEEP) {
        free(st->val);
        st->val = NULL;
        st->cap = 0;
    }
}

/* Handle one byte in a container (outside strings); returns MORE to go on. */
static enum qmp_stream_event scan_container(struct qmp_stream *st, uint8_t b)
{
    if (is_bad_outside(b))
        return stream_error(st, "JSON parse error, invalid byte 0x%02x", b);
    if (b == '{' || b == '[') {
        if (st->depth >= QMP_MAX_DEPTH)
            return stream_error(st, "JSON nesting depth limit exceeded (%u)", QMP_MAX_DEPTH);
        if (b == '[')
            st->nest[st->depth / 8] |= (uint8_t)(1u << (st->depth % 8));
        else
            st->nest[st->depth / 8] &= (uint8_t) ~(1u << (st->depth % 8));
        st->depth++;
    } else if (b == '}' || b == ']') {
        unsigned top = st->depth - 1;
        bool is_array = st->nest[top / 8] >> (top % 8) & 1;
        if (is_array != (b == ']'))
            return stream_error(st, "JSON parse error, mismatched '%c'", b);
        st->depth--;
    } else if (b == '"') {
        st->state = QMP_SCAN_STRING;
    }
    return QMP_STREAM_MORE;
}

enum qmp_stream_event qmp_stream_feed(struct qmp_stream *st, const uint8_t *data, size_t len,
                                      size_t *used)
{
    enum qmp_stream_event ev = QMP_STREAM_MORE;
    size_t i;
    int r;

    if (st->done) {
        st->done = false;
        stream_trim(st);
    }
    for (i = 0; i < len; i++) {
        uint8_t b = data[i];
        bool complete = false;

        switch (st->state) {
        case QMP_SCAN_RECOVER:
            if (b == '{' || b == '[') {
                st->state = QMP_SCAN_IDLE;
                i--; /* the next value starts here */
            } else if ((b < 0x20 && b != '\t') || b >= 0xFE) {
                st->state = QMP_SCAN_IDLE;
            }
            continue;
        case QMP_SCAN_IDLE:
            if (is_ws(b))
                continue;
            if (is_bad_outside(b)) {
                ev = stream_error(st, "JSON parse error, invalid byte 0x%02x", b);
                goto out_consumed;
            }
            if (b == '}' || b == ']') {
                /* One stray closer: report it and go on with the next byte. */
                snprintf(st->err, sizeof(st->err), "JSON parse error, stray '%c'", b);
                ev = QMP_STREAM_ERROR;
                goto out_consumed;
            }
            st->len = 0;
            st->depth = 0;
            if (b == '{' || b == '[') {
                st->state = QMP_SCAN_CONTAINER;
                ev = scan_container(st, b);
            } else if (b == '"') {
                st->state = QMP_SCAN_STRING;
            } else {
                st->state = QMP_SCAN_SCALAR;
            }
            break;
        case QMP_SCAN_CONTAINER:
            ev = scan_container(st, b);
            if (ev != QMP_STREAM_MORE)
                goto out_consumed;
            complete = st->depth == 0;
            break;
        case QMP_SCAN_STRING:
        case QMP_SCAN_ESCAPE:
            /* JSON forbids raw control characters in strings (RFC 8259 §7):
             * an unterminated string usually ends up here at its newline. */
            if (b < 0x20 || b >= 0xFE) {
                ev = stream_error(st, "JSON parse error, invalid byte 0x%02x in string", b);
                goto out_consumed;
            }
            if (st->state == QMP_SCAN_ESCAPE) {
                st->state = QMP_SCAN_STRING;
            } else if (b == '\\') {
                st->state = QMP_SCAN_ESCAPE;
            } else if (b == '"') {
                st->state = st->depth ? QMP_SCAN_CONTAINER : QMP_SCAN_IDLE;
                complete = st->depth == 0;
            }
            break;
        case QMP_SCAN_SCALAR:
            if (ends_scalar(b)) {
                /* The delimiter belongs to what follows: not consumed. */
                st->state = QMP_SCAN_IDLE;
                st->done = true;
                *used = i;
                return QMP_STREAM_VALUE;
            }
            break;
        }
        r = stream_put(st, b);
        if (r < 0) {
            st->state = QMP_SCAN_RECOVER;
            st->len = 0;
            ev = r == -E2BIG ? QMP_STREAM_TOO_BIG : QMP_STREAM_NOMEM;
            goto out_consumed;
        }
        if (complete) {
            st->state = QMP_SCAN_IDLE;
            st->done = true;
            ev = QMP_STREAM_VALUE;
            goto out_consumed;
        }
    }
    *used = len;
    return QMP_STREAM_MORE;

out_consumed:
    *used = i + 1;
    return ev;
}
