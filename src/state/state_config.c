/*
 * Values from the CONFIG section's text (state_config.h).
 */
#include <errno.h>
#include <string.h>

#include "state/state_config.h"

const char *state_config_get(const char *cfg, const char *key, size_t *len)
{
    size_t klen = strlen(key);

    for (const char *p = cfg; *p;) {
        size_t n = strcspn(p, "\n");

        if (n > klen && p[klen] == '=' && !memcmp(p, key, klen)) {
            *len = n - klen - 1;
            return p + klen + 1;
        }
        p += n + (p[n] == '\n');
    }
    *len = 0;
    return NULL;
}

int state_config_get_u64(const char *cfg, const char *key, uint64_t *out)
{
    size_t len;
    const char *v = state_config_get(cfg, key, &len);
    uint64_t x = 0;

    if (!v)
        return -ENOENT;
    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(v[i] - '0');

        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return -EINVAL;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}
