/*
 * godwit-vm's command line: the subset of qemu-system-riscv64's options
 * that fits our machine, with QEMU's spellings and defaults (a bare -m
 * number is MiB, -nographic puts the serial port on stdio, options take
 * one or two leading dashes).  Parsing only fills a struct virt_config;
 * it never exits or prints errors itself, so it can be unit-tested.
 */
#ifndef GODWIT_MACHINE_CMDLINE_H
#define GODWIT_MACHINE_CMDLINE_H

#include <stdio.h>

#include "machine/virt.h"

enum {
    CMDLINE_RUN = 0,  /* cfg is complete: build and run the machine */
    CMDLINE_DONE = 1, /* help or version was printed: exit with status 0 */
};

/*
 * Parse argv[1..argc) into cfg (argv strings are referenced, not copied).
 * Returns CMDLINE_RUN, CMDLINE_DONE (text printed to out), or -EINVAL with
 * a one-line message naming the option in err (no program-name prefix).
 */
int cmdline_parse(int argc, char **argv, struct virt_config *cfg, FILE *out, char *err,
                  size_t errlen) gw_must_check;

/* Parse a -m value: "128M", "1G", "512k", or a bare number of MiB. */
int cmdline_parse_ram_size(const char *s, uint64_t *bytes) gw_must_check;

#endif
