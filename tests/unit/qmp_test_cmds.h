/*
 * Commands both QMP unit tests (test_qmp.c against the server,
 * test_qmp_client.c against the client) register: echo returns its
 * arguments, fail answers DeviceNotFound.  Header-only, like board_check.h.
 */
#ifndef GODWIT_TESTS_QMP_TEST_CMDS_H
#define GODWIT_TESTS_QMP_TEST_CMDS_H

#include <jansson.h>

#include "qmp/qmp.h"

static json_t *cmd_echo(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)opaque;
    (void)err;
    return json_incref(args);
}

static json_t *cmd_fail(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)opaque;
    (void)args;
    return qmp_error_set(err, QMP_ERR_DEV_NOT_FOUND, "Device '%s' not found", "nodev");
}

#endif
