/*
 * The saved-state checker (state_check.c): reads a whole state file with the
 * state reader the VM's loader uses and reports what it holds (format,
 * configuration, sections, RAM pages, checksum).  A file it calls valid is
 * framed correctly, every RAM batch decodes inside the RAM size its
 * configuration names, and its checksum matches; the components' own
 * payloads are checked by the VM that loads them.  Used by `godwit state
 * check` and by godwitd before it accepts a suspended VM's state.
 */
#ifndef GODWIT_STATE_STATE_CHECK_H
#define GODWIT_STATE_STATE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "state/state_format.h"

#define STATE_MAX_SECTIONS 4096 /* listed individually; RAM batches are summed */

struct state_sec {
    char name[STATE_NAME_MAX + 1];
    uint32_t instance;
    uint16_t version;
    uint32_t len;
};

struct state_report {
    struct state_header h;
    bool header_ok;
    char *config;
    bool hash_ok;
    uint64_t ram_size;
    uint64_t ram_sections, ram_pages, ram_bytes, lz4_batches, zero_sections;
    struct state_sec secs[STATE_MAX_SECTIONS];
    unsigned nsecs;
    bool checksum_ok;
    uint64_t file_size;
    char error[400];
};

/* Walk the stream on fd (read from its current offset) and fill r (zeroed
 * by the caller; r->config is malloc'd, the caller frees it).  0 if the
 * file is valid, else -errno with r->error saying why. */
int state_check(int fd, struct state_report *r);

#endif
