/*
 * QEMU-style option strings: "[implied,]key=value[,key=value...]", as
 * -drive, -device and -object take them.  ",," inside a value stands for
 * one comma (file names).  Parsing copies the string; lookups mark the
 * keys they find, so the caller can refuse what nobody asked for
 * (keyval_unused), the way QEMU names an unknown property.
 */
#ifndef GODWIT_COMMON_KEYVAL_H
#define GODWIT_COMMON_KEYVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define KEYVAL_MAX 32 /* keys per string */

struct keyval_item {
    const char *key; /* points into keyval.buf */
    const char *val;
    bool used;
};

struct keyval {
    char *buf; /* the unescaped copy the items point into */
    unsigned n;
    struct keyval_item items[KEYVAL_MAX];
};

/*
 * Parse s into kv.  A first element without '=' becomes implied=element
 * (e.g. "driver" for -device, "type" for -object; NULL: not allowed).
 * Returns 0, or -EINVAL / -ENOMEM with a one-line reason in err.
 * keyval_fini() must be called in every case.
 */
int keyval_parse(struct keyval *kv, const char *s, const char *implied, char *err,
                 size_t errlen) gw_must_check;
void keyval_fini(struct keyval *kv);

/* The value of key (the last one if repeated), marked used; NULL if absent. */
const char *keyval_get(struct keyval *kv, const char *key);

/* key as a boolean (on/off, true/false, yes/no; absent = def); -EINVAL. */
int keyval_get_bool(struct keyval *kv, const char *key, bool def, bool *out) gw_must_check;

/* The first key no lookup asked for, or NULL. */
const char *keyval_unused(const struct keyval *kv);

#endif
