/* Machine configuration defaults (kept apart from virt.c so option parsing
 * and its tests do not pull in the harts). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "machine/virt.h"

void virt_config_init(struct virt_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ram_size = VIRT_DEFAULT_RAM;
    cfg->smp = 1;
    cfg->serial.kind = CHARDEV_NONE;
    cfg->bios = VIRT_DEFAULT_BIOS;
}

int virt_trace_parse(const char *s, unsigned *bits, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        unsigned bit;
    } words[] = {{"traps", VIRT_TRACE_TRAPS}, {"migration", VIRT_TRACE_MIGRATION}};
    const char *p = s;

    *bits = 0;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
            if (strlen(words[i].name) == n && !strncmp(p, words[i].name, n)) {
                *bits |= words[i].bit;
                found = true;
            }
        }
        if (!found && n) {
            snprintf(err, errlen, "GODWIT_TRACE: unknown trace '%.*s' (known: traps)", (int)n, p);
            return -EINVAL;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}
