/*
 * The store's registry (store.h): VMs, peer hosts and join tokens.  Every
 * statement is in store.c's table; this file binds and reads them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "godwitd/store_int.h"

/* ---- VMs ---- */

static int vm_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_vm *vm = elem;

    store_col_str(st, 0, vm->name, sizeof(vm->name));
    store_col_str(st, 1, vm->uuid, sizeof(vm->uuid));
    vm->memory = (uint64_t)sqlite3_column_int64(st, 2);
    vm->cpus = (uint32_t)sqlite3_column_int64(st, 3);
    store_col_str(st, 5, vm->state, sizeof(vm->state));
    vm->pid = sqlite3_column_int64(st, 6);
    store_col_str(st, 7, vm->qmp_path, sizeof(vm->qmp_path));
    store_col_str(st, 8, vm->console_path, sizeof(vm->console_path));
    vm->exit_status = sqlite3_column_int(st, 9);
    vm->created_ms = sqlite3_column_int64(st, 10);
    vm->updated_ms = sqlite3_column_int64(st, 11);
    return store_col_dup(s, st, 4, &vm->config);
}

static void vm_clear(void *elem)
{
    store_vm_clear(elem);
}

static int vm_check(struct store *s, const struct store_vm *vm)
{
    int ret;

    if ((ret = store_check_str(s, "VM name", vm->name, STORE_NAME_MAX, false)) < 0 ||
        (ret = store_check_str(s, "VM uuid", vm->uuid, STORE_UUID_MAX, false)) < 0 ||
        (ret = store_check_str(s, "VM state", vm->state, STORE_WORD_MAX, false)) < 0 ||
        (ret = store_check_str(s, "QMP socket path", vm->qmp_path, STORE_PATH_MAX, true)) < 0 ||
        (ret = store_check_str(s, "console path", vm->console_path, STORE_PATH_MAX, true)) < 0)
        return ret;
    if (!store_vm_state_valid(vm->state))
        return store_fail(s, -EINVAL, "unknown VM state '%s'", vm->state);
    if (vm->memory > INT64_MAX)
        return store_fail(s, -EINVAL, "VM memory too large");
    return 0;
}

static int vm_write(struct store *s, enum stmt_id id, const struct store_vm *vm)
{
    sqlite3_stmt *st;
    int ret = vm_check(s, vm);

    if (ret < 0)
        return ret;
    st = store_stmt(s, id);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, vm->name);
    store_bind_text(st, 2, vm->uuid);
    sqlite3_bind_int64(st, 3, (int64_t)vm->memory);
    sqlite3_bind_int64(st, 4, vm->cpus);
    store_bind_text(st, 5, vm->config);
    store_bind_text(st, 6, vm->state);
    sqlite3_bind_int64(st, 7, vm->pid);
    store_bind_text(st, 8, vm->qmp_path);
    store_bind_text(st, 9, vm->console_path);
    sqlite3_bind_int(st, 10, vm->exit_status);
    sqlite3_bind_int64(st, 11, store_now_ms());
    ret = store_run(s, st, "write VM");
    if (ret == -EEXIST)
        store_fail(s, ret, "a VM named '%s' or with uuid %s exists already", vm->name, vm->uuid);
    return ret;
}

int store_vm_add(struct store *s, const struct store_vm *vm)
{
    return vm_write(s, ST_VM_ADD, vm);
}

int store_vm_put(struct store *s, const struct store_vm *vm)
{
    return vm_write(s, ST_VM_PUT, vm);
}

int store_vm_get(struct store *s, const char *name, struct store_vm *out)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "VM name", name, STORE_NAME_MAX, false);

    memset(out, 0, sizeof(*out));
    if (ret < 0)
        return ret;
    st = store_stmt(s, ST_VM_GET);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    ret = store_one(s, st, vm_row, out, "VM");
    if (ret == -ENOENT)
        store_fail(s, ret, "no VM named '%s'", name);
    if (ret < 0)
        store_vm_clear(out);
    return ret;
}

int store_vm_list(struct store *s, struct store_vm **out, size_t *n)
{
    sqlite3_stmt *st = store_stmt(s, ST_VM_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    return store_collect(s, st, sizeof(**out), vm_row, (void **)out, n, vm_clear);
}

int store_vm_delete(struct store *s, const char *name)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "VM name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    st = store_stmt(s, ST_VM_DELETE);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    ret = store_run(s, st, "delete VM");
    if (ret == 0 && store_changes(s) == 0)
        ret = store_fail(s, -ENOENT, "no VM named '%s'", name);
    return ret;
}

int store_vm_set_state(struct store *s, const char *name, const char *state, int64_t pid,
                       int exit_status)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "VM name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    if (!store_vm_state_valid(state))
        return store_fail(s, -EINVAL, "unknown VM state '%s'", state ? state : "(null)");
    st = store_stmt(s, ST_VM_SET_STATE);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    store_bind_text(st, 2, state);
    sqlite3_bind_int64(st, 3, pid);
    sqlite3_bind_int(st, 4, exit_status);
    sqlite3_bind_int64(st, 5, store_now_ms());
    ret = store_run(s, st, "set VM state");
    if (ret == 0 && store_changes(s) == 0)
        ret = store_fail(s, -ENOENT, "no VM named '%s'", name);
    return ret;
}

void store_vm_clear(struct store_vm *vm)
{
    if (!vm)
        return;
    free(vm->config);
    vm->config = NULL;
}

void store_vm_list_free(struct store_vm *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_vm_clear(&v[i]);
    free(v);
}

/* ---- peers ---- */

static int peer_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_peer *p = elem;

    (void)s;
    store_col_str(st, 0, p->name, sizeof(p->name));
    store_col_str(st, 1, p->address, sizeof(p->address));
    store_col_str(st, 2, p->fingerprint, sizeof(p->fingerprint));
    p->added_ms = sqlite3_column_int64(st, 3);
    return 0;
}

static void store_nothing(void *elem)
{
    (void)elem;
}

int store_peer_add(struct store *s, const struct store_peer *p)
{
    sqlite3_stmt *st;
    int ret;

    if ((ret = store_check_str(s, "peer name", p->name, STORE_NAME_MAX, false)) < 0 ||
        (ret = store_check_str(s, "peer address", p->address, STORE_ADDR_MAX, false)) < 0 ||
        (ret = store_check_str(s, "peer fingerprint", p->fingerprint, STORE_FPR_MAX, false)) < 0)
        return ret;
    st = store_stmt(s, ST_PEER_ADD);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, p->name);
    store_bind_text(st, 2, p->address);
    store_bind_text(st, 3, p->fingerprint);
    sqlite3_bind_int64(st, 4, store_now_ms());
    ret = store_run(s, st, "add peer");
    if (ret == -EEXIST)
        store_fail(s, ret, "a peer named '%s' or with that certificate exists already", p->name);
    return ret;
}

int store_peer_get(struct store *s, const char *name, struct store_peer *out)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "peer name", name, STORE_NAME_MAX, false);

    memset(out, 0, sizeof(*out));
    if (ret < 0)
        return ret;
    st = store_stmt(s, ST_PEER_GET);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    ret = store_one(s, st, peer_row, out, "peer");
    if (ret == -ENOENT)
        store_fail(s, ret, "no peer named '%s'", name);
    return ret;
}

int store_peer_find_fingerprint(struct store *s, const char *fpr, struct store_peer *out)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "fingerprint", fpr, STORE_FPR_MAX, false);

    memset(out, 0, sizeof(*out));
    if (ret < 0)
        return ret;
    st = store_stmt(s, ST_PEER_FPR);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, fpr);
    ret = store_one(s, st, peer_row, out, "peer");
    if (ret == -ENOENT)
        store_fail(s, ret, "no peer has certificate %s", fpr);
    return ret;
}

int store_peer_list(struct store *s, struct store_peer **out, size_t *n)
{
    sqlite3_stmt *st = store_stmt(s, ST_PEER_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    return store_collect(s, st, sizeof(**out), peer_row, (void **)out, n, store_nothing);
}

int store_peer_remove(struct store *s, const char *name)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "peer name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    st = store_stmt(s, ST_PEER_REMOVE);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    ret = store_run(s, st, "remove peer");
    if (ret == 0 && store_changes(s) == 0)
        ret = store_fail(s, -ENOENT, "no peer named '%s'", name);
    return ret;
}

/* ---- tokens ---- */

int store_token_add(struct store *s, const char *id, const char *secret_hash, int64_t expires_ms)
{
    sqlite3_stmt *st;
    int ret;

    if ((ret = store_check_str(s, "token id", id, STORE_NAME_MAX, false)) < 0 ||
        (ret = store_check_str(s, "token hash", secret_hash, STORE_FPR_MAX, false)) < 0)
        return ret;
    st = store_stmt(s, ST_TOKEN_ADD);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, id);
    store_bind_text(st, 2, secret_hash);
    sqlite3_bind_int64(st, 3, expires_ms);
    return store_run(s, st, "add token");
}

int store_token_consume(struct store *s, const char *id, const char *secret_hash, int64_t now_ms)
{
    sqlite3_stmt *st;
    int ret, rc;

    if ((ret = store_check_str(s, "token id", id, STORE_NAME_MAX, false)) < 0 ||
        (ret = store_check_str(s, "token hash", secret_hash, STORE_FPR_MAX, false)) < 0)
        return ret;
    if ((ret = store_begin(s)) < 0)
        return ret;
    st = store_stmt(s, ST_TOKEN_CONSUME);
    if (!st)
        return store_end(s, -EIO);
    store_bind_text(st, 1, id);
    store_bind_text(st, 2, secret_hash);
    sqlite3_bind_int64(st, 3, now_ms);
    ret = store_run(s, st, "use token");
    if (ret == 0 && store_changes(s) == 0) {
        /* not consumed: say why */
        st = store_stmt(s, ST_TOKEN_GET);
        if (!st)
            return store_end(s, -EIO);
        store_bind_text(st, 1, id);
        store_bind_text(st, 2, secret_hash);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_int(st, 0))
            ret = store_fail(s, -EALREADY, "the token was used already");
        else if (rc == SQLITE_ROW)
            ret = store_fail(s, -ETIMEDOUT, "the token expired");
        else if (rc == SQLITE_DONE)
            ret = store_fail(s, -ENOENT, "unknown token");
        else
            ret = store_sql_fail(s, sqlite3_extended_errcode(s->db), "token");
        store_done(st);
    }
    return store_end(s, ret);
}

int store_token_purge(struct store *s, int64_t now_ms, unsigned *n)
{
    sqlite3_stmt *st = store_stmt(s, ST_TOKEN_PURGE);
    int ret;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    ret = store_run(s, st, "purge tokens");
    if (n)
        *n = ret == 0 ? (unsigned)store_changes(s) : 0;
    return ret;
}
