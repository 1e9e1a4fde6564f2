/*
 * The CONFIG section's text (docs/state.md): what a state depends on, one
 * "key=value" per line ("machine=virt", "ram=536870912", "harts=2", ...),
 * the same text on both sides of a migration.  These helpers read single
 * values out of it for tools that do not build the machine (the checker,
 * the host agent); the VM itself compares the whole text with its own.
 */
#ifndef GODWIT_STATE_STATE_CONFIG_H
#define GODWIT_STATE_STATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/*
 * The value on key's line (the first line whose text before '=' is exactly
 * key): a pointer into cfg, *len bytes up to the end of that line (not
 * NUL-terminated).  NULL if no line has that key.
 */
const char *state_config_get(const char *cfg, const char *key, size_t *len);

/* key's value as a decimal number: 0, -ENOENT (no such line) or -EINVAL
 * (empty, not all digits, or above UINT64_MAX). */
int state_config_get_u64(const char *cfg, const char *key, uint64_t *out) gw_must_check;

#endif
