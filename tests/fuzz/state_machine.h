/*
 * The machine the state-loader fuzz target loads into, shared with the
 * seed generator (tests/tools/state_seed.c) so seeds carry the right
 * configuration hash: 16 MiB of RAM, 2 harts, OpenSBI as firmware (no
 * kernel), a virtio-blk on a scratch file and a virtio-rng.
 */
#ifndef GODWIT_TESTS_FUZZ_STATE_MACHINE_H
#define GODWIT_TESTS_FUZZ_STATE_MACHINE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "machine/virt_int.h"

static inline struct virt *state_machine_new(void)
{
    static char disk[] = "/tmp/godwit-state-fuzz-XXXXXX";
    static char drive[128];
    struct virt_config cfg;
    struct virt *vm;
    char err[512];
    int fd;

    fd = mkstemp(disk);
    if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
        perror("state_machine: scratch disk");
        return NULL;
    }
    close(fd);
    snprintf(drive, sizeof(drive), "file=%s,format=raw,if=none,id=d0", disk);
    virt_config_init(&cfg);
    cfg.ram_size = 16ull << 20;
    cfg.smp = 2;
    cfg.drives[cfg.ndrives++] = drive;
    cfg.devices[cfg.ndevices++] = "virtio-blk-device,drive=d0";
    cfg.devices[cfg.ndevices++] = "virtio-rng-device";
    vm = virt_new(&cfg, err, sizeof(err));
    unlink(disk); /* the open fd keeps it */
    if (!vm)
        fprintf(stderr, "state_machine: %s\n", err);
    return vm;
}

#endif
