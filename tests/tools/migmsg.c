/*
 * migmsg MAGIC TYPE VALUE: print one commit-protocol control message
 * (src/migration/mig_proto.h: 24 bytes, its XXH3 check included) in hex,
 * for tests that play one side of a migration (tests/linux/postcopy_test.py:
 * a man in the middle that adds hostile requests to the return path).
 * MAGIC, TYPE and VALUE are numbers (0x... allowed).
 */
#include <stdio.h>
#include <stdlib.h>

#include "migration/mig_proto.h"

int main(int argc, char **argv)
{
    uint8_t m[MIG_MSG_LEN];

    if (argc != 4) {
        fprintf(stderr, "usage: migmsg MAGIC TYPE VALUE\n");
        return 2;
    }
    mig_msg_encode(m, (uint32_t)strtoul(argv[1], NULL, 0), (uint32_t)strtoul(argv[2], NULL, 0),
                   strtoull(argv[3], NULL, 0));
    for (unsigned i = 0; i < MIG_MSG_LEN; i++)
        printf("%02x", m[i]);
    printf("\n");
    return 0;
}
