/* QEMU-style option strings; see keyval.h. */
#include "common/keyval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void keyval_fini(struct keyval *kv)
{
    free(kv->buf);
    kv->buf = NULL;
    kv->n = 0;
}

int keyval_parse(struct keyval *kv, const char *s, const char *implied, char *err, size_t errlen)
{
    size_t len = strlen(s);
    char *out;
    const char *p = s;

    memset(kv, 0, sizeof(*kv));
    kv->buf = malloc(len + 1);
    if (!kv->buf) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    out = kv->buf;
    while (*p) {
        char *start = out;
        char *eq = NULL;
        struct keyval_item *it;

        /* One element: up to a single comma; ",," is a literal comma. */
        while (*p) {
            if (*p == ',') {
                if (p[1] != ',')
                    break;
                p++;
            } else if (*p == '=' && !eq) {
                eq = out;
            }
            *out++ = *p++;
        }
        *out++ = '\0';
        if (*p == ',')
            p++;
        if (kv->n >= KEYVAL_MAX) {
            snprintf(err, errlen, "too many options (at most %d)", KEYVAL_MAX);
            return -EINVAL;
        }
        it = &kv->items[kv->n];
        if (eq) {
            *eq = '\0';
            it->key = start;
            it->val = eq + 1;
        } else if (kv->n == 0 && implied) {
            it->key = implied;
            it->val = start;
        } else {
            snprintf(err, errlen, "'%s' needs a value (key=value)", start);
            return -EINVAL;
        }
        if (!*it->key) {
            snprintf(err, errlen, "empty option name in '%s'", s);
            return -EINVAL;
        }
        kv->n++;
    }
    return 0;
}

const char *keyval_get(struct keyval *kv, const char *key)
{
    const char *val = NULL;

    for (unsigned i = 0; i < kv->n; i++) {
        if (!strcmp(kv->items[i].key, key)) {
            kv->items[i].used = true;
            val = kv->items[i].val;
        }
    }
    return val;
}

int keyval_get_bool(struct keyval *kv, const char *key, bool def, bool *out)
{
    const char *v = keyval_get(kv, key);

    if (!v)
        *out = def;
    else if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

const char *keyval_unused(const struct keyval *kv)
{
    for (unsigned i = 0; i < kv->n; i++)
        if (!kv->items[i].used)
            return kv->items[i].key;
    return NULL;
}
