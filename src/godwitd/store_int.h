/*
 * Private parts of the store (store.c, store_registry.c, store_jobs.c): the
 * handle, the statement ids (their SQL is store.c's table, the one place
 * with SQL), and the helpers every part uses.  Helpers that fail record the
 * reason for store_errmsg() and return -errno.
 */
#ifndef GODWIT_GODWITD_STORE_INT_H
#define GODWIT_GODWITD_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "godwitd/store.h"

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_HOST_SET,
    ST_HOST_GET,
    ST_VM_ADD,
    ST_VM_PUT,
    ST_VM_GET,
    ST_VM_LIST,
    ST_VM_DELETE,
    ST_VM_SET_STATE,
    ST_PEER_ADD,
    ST_PEER_GET,
    ST_PEER_FPR,
    ST_PEER_LIST,
    ST_PEER_REMOVE,
    ST_TOKEN_ADD,
    ST_TOKEN_CONSUME,
    ST_TOKEN_GET,
    ST_TOKEN_PURGE,
    ST_JOB_CREATE,
    ST_JOB_GET,
    ST_JOB_LIST,
    ST_JOB_LIST_ACTIVE,
    ST_JOB_STATUS,
    ST_JOB_SET_PHASE,
    ST_JOB_SET_FIGURES,
    ST_JOB_FINISH,
    ST_JOB_SET_STATUS,
    ST_JOB_LIFT_ALL,
    ST_HOLD_ADD,
    ST_HOLD_GET,
    ST_HOLD_LIST,
    ST_HOLD_LIST_ACTIVE,
    ST_HOLD_LIFT,
    ST_HOLD_ACTIVE_COUNT,
    ST_EVENT_ADD,
    ST_EVENT_SINCE,
    ST_EVENT_SUBJECT,
    ST_EVENT_TRIM,
    ST_COUNT
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char errmsg[256];
};

typedef int (*store_row_fn)(struct store *s, sqlite3_stmt *st, void *elem);

bool store_job_direction_valid(const char *dir);

/* Record a failure (reason for store_errmsg) and return ret. */
int store_fail(struct store *s, int ret, const char *fmt, ...) gw_printf(3, 4);
/* SQLite's code rc while doing what, as -EIO (-EEXIST for constraints). */
int store_sql_fail(struct store *s, int rc, const char *what);
/* A string parameter: present (unless may_be_empty), shorter than max. */
int store_check_str(struct store *s, const char *what, const char *v, size_t max,
                    bool may_be_empty);
/* The prepared statement id, reset and unbound. */
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id);
void store_bind_text(sqlite3_stmt *st, int i, const char *v); /* NULL binds NULL */
void store_done(sqlite3_stmt *st);                            /* reset after use */
/* Step a statement that returns no row; 0 or -errno. */
int store_run(struct store *s, sqlite3_stmt *st, const char *what);
int store_run_id(struct store *s, enum stmt_id id, const char *what);
/* Transactions: begin; end(s, ret) commits when ret is 0, else rolls back,
 * and returns ret (or the commit's failure). */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_end(struct store *s, int ret);
/* Column i as text into dst (n bytes, cut to fit) or a malloc'ed copy. */
void store_col_str(sqlite3_stmt *st, int i, char *dst, size_t n);
int store_col_dup(struct store *s, sqlite3_stmt *st, int i, char **dst);
/* Rows changed by the last statement. */
int store_changes(struct store *s);
/* Every row of st into a malloc'ed array of sz-byte elements (row fills
 * one, clear frees one on failure); one row into elem (-ENOENT if none). */
int store_collect(struct store *s, sqlite3_stmt *st, size_t sz, store_row_fn row, void **out,
                  size_t *n, void (*clear)(void *));
int store_one(struct store *s, sqlite3_stmt *st, store_row_fn row, void *elem, const char *what);

#endif
