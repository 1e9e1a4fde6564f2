/* Machine configuration defaults (kept apart from virt.c so option parsing
 * and its tests do not pull in the harts). */
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
