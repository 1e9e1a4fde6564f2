/*
 * The host agent's store on SQLite: the schema and its migrations, and every
 * SQL statement godwitd runs (see store.h for the conventions).
 */
#include "godwitd/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "common/util.h"

/*
 * Migration steps, in order: step i takes the schema from version i to
 * i + 1.  Steps are only ever appended; a released step never changes.
 */
static const char *const migrations[] = {
    /* 0 -> 1: the registry, trust, jobs, holds, events */
    "CREATE TABLE host ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE vms ("
    "  name TEXT PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  memory INTEGER NOT NULL,"
    "  cpus INTEGER NOT NULL,"
    "  config TEXT,"
    "  state TEXT NOT NULL,"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  qmp_path TEXT NOT NULL DEFAULT '',"
    "  console_path TEXT NOT NULL DEFAULT '',"
    "  exit_status INTEGER NOT NULL DEFAULT -1,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE peers ("
    "  name TEXT PRIMARY KEY,"
    "  address TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL UNIQUE,"
    "  added_ms INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY,"
    "  secret_hash TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  used INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  direction TEXT NOT NULL,"
    "  vm TEXT NOT NULL,"
    "  peer TEXT NOT NULL,"
    "  phase TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  started_by TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  ended_ms INTEGER NOT NULL DEFAULT 0,"
    "  options TEXT,"
    "  figures TEXT,"
    "  error TEXT);"
    /* at most one unfinished job per VM */
    "CREATE UNIQUE INDEX jobs_active_vm ON jobs(vm) WHERE status IN ('running', 'held');"
    "CREATE TABLE holds ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  type TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  set_by TEXT NOT NULL,"
    "  set_ms INTEGER NOT NULL,"
    "  lift TEXT,"
    "  lifted_ms INTEGER NOT NULL DEFAULT 0,"
    "  lifted_by TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX holds_job ON holds(job_id, lifted_ms);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time_ms INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  data TEXT);"
    "CREATE INDEX events_subject ON events(subject, id);",
};

_Static_assert(GW_ARRAY_SIZE(migrations) == STORE_SCHEMA_VERSION,
               "one migration step per schema version");

#define VM_COLS                                                                                    \
    "name, uuid, memory, cpus, config, state, pid, qmp_path, console_path, exit_status, "          \
    "created_ms, updated_ms"
#define JOB_COLS                                                                                   \
    "id, kind, direction, vm, peer, phase, status, started_by, created_ms, started_ms, "           \
    "ended_ms, options, figures, error"
#define HOLD_COLS "id, job_id, type, reason, set_by, set_ms, lift, lifted_ms, lifted_by"

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

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_HOST_SET] = "INSERT INTO host (id, name, created_ms) VALUES (1, ?1, ?2) "
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    [ST_HOST_GET] = "SELECT name, created_ms FROM host WHERE id = 1",
    [ST_VM_ADD] = "INSERT INTO vms (" VM_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                  "?11, ?11)",
    [ST_VM_PUT] = "INSERT INTO vms (" VM_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                  "?11, ?11) ON CONFLICT (name) DO UPDATE SET uuid = excluded.uuid, "
                  "memory = excluded.memory, cpus = excluded.cpus, config = excluded.config, "
                  "state = excluded.state, pid = excluded.pid, qmp_path = excluded.qmp_path, "
                  "console_path = excluded.console_path, exit_status = excluded.exit_status, "
                  "updated_ms = excluded.updated_ms",
    [ST_VM_GET] = "SELECT " VM_COLS " FROM vms WHERE name = ?1",
    [ST_VM_LIST] = "SELECT " VM_COLS " FROM vms ORDER BY name",
    [ST_VM_DELETE] = "DELETE FROM vms WHERE name = ?1",
    [ST_VM_SET_STATE] = "UPDATE vms SET state = ?2, pid = ?3, exit_status = ?4, updated_ms = ?5 "
                        "WHERE name = ?1",
    [ST_PEER_ADD] = "INSERT INTO peers (name, address, fingerprint, added_ms) "
                    "VALUES (?1, ?2, ?3, ?4)",
    [ST_PEER_GET] = "SELECT name, address, fingerprint, added_ms FROM peers WHERE name = ?1",
    [ST_PEER_FPR] = "SELECT name, address, fingerprint, added_ms FROM peers "
                    "WHERE fingerprint = ?1",
    [ST_PEER_LIST] = "SELECT name, address, fingerprint, added_ms FROM peers ORDER BY name",
    [ST_PEER_REMOVE] = "DELETE FROM peers WHERE name = ?1",
    [ST_TOKEN_ADD] = "INSERT INTO tokens (id, secret_hash, expires_ms) VALUES (?1, ?2, ?3)",
    [ST_TOKEN_CONSUME] = "UPDATE tokens SET used = 1 WHERE id = ?1 AND secret_hash = ?2 "
                         "AND used = 0 AND expires_ms > ?3",
    [ST_TOKEN_GET] = "SELECT used, expires_ms FROM tokens WHERE id = ?1 AND secret_hash = ?2",
    [ST_TOKEN_PURGE] = "DELETE FROM tokens WHERE used = 1 OR expires_ms <= ?1",
    [ST_JOB_CREATE] = "INSERT INTO jobs (kind, direction, vm, peer, phase, status, started_by, "
                      "created_ms, options) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8)",
    [ST_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [ST_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs ORDER BY id DESC",
    [ST_JOB_LIST_ACTIVE] = "SELECT " JOB_COLS " FROM jobs WHERE status IN ('running', 'held') "
                           "ORDER BY id DESC",
    [ST_JOB_STATUS] = "SELECT status FROM jobs WHERE id = ?1",
    [ST_JOB_SET_PHASE] = "UPDATE jobs SET phase = ?2, "
                         "started_ms = CASE started_ms WHEN 0 THEN ?3 ELSE started_ms END "
                         "WHERE id = ?1",
    [ST_JOB_SET_FIGURES] = "UPDATE jobs SET figures = ?2 WHERE id = ?1",
    [ST_JOB_FINISH] = "UPDATE jobs SET status = ?2, error = ?3, "
                      "figures = coalesce(?4, figures), ended_ms = ?5 WHERE id = ?1",
    [ST_JOB_SET_STATUS] = "UPDATE jobs SET status = ?2 WHERE id = ?1",
    [ST_JOB_LIFT_ALL] = "UPDATE holds SET lifted_ms = ?2, lifted_by = 'job finished' "
                        "WHERE job_id = ?1 AND lifted_ms = 0",
    [ST_HOLD_ADD] = "INSERT INTO holds (job_id, type, reason, set_by, set_ms, lift) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_HOLD_GET] = "SELECT " HOLD_COLS " FROM holds WHERE id = ?1",
    [ST_HOLD_LIST] = "SELECT " HOLD_COLS " FROM holds WHERE job_id = ?1 ORDER BY id",
    [ST_HOLD_LIST_ACTIVE] = "SELECT " HOLD_COLS " FROM holds WHERE job_id = ?1 "
                            "AND lifted_ms = 0 ORDER BY id",
    [ST_HOLD_LIFT] = "UPDATE holds SET lifted_ms = ?2, lifted_by = ?3 WHERE id = ?1",
    [ST_HOLD_ACTIVE_COUNT] = "SELECT count(*) FROM holds WHERE job_id = ?1 AND lifted_ms = 0",
    [ST_EVENT_ADD] = "INSERT INTO events (time_ms, type, subject, data) VALUES (?1, ?2, ?3, ?4)",
    [ST_EVENT_SINCE] = "SELECT id, time_ms, type, subject, data FROM events WHERE id > ?1 "
                       "ORDER BY id LIMIT ?2",
    [ST_EVENT_SUBJECT] = "SELECT id, time_ms, type, subject, data FROM events "
                         "WHERE subject = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_EVENT_TRIM] = "DELETE FROM events WHERE id <= "
                      "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char errmsg[256];
};

static const char *const vm_states[] = {"defined",  "starting",  "running", "stopping",
                                        "stopped",  "suspended", "crashed", "migrating",
                                        "migrated", "incoming"};
static const char *const job_kinds[] = {"live", "cold", "suspended"};
static const char *const job_dirs[] = {"out", "in"};
static const char *const job_statuses[] = {"running", "held", "done", "failed", "cancelled"};
static const char *const hold_types[] = {"technical", "resources", "compliance", "dependency",
                                         "window",    "budget",    "manual"};

static bool in_set(const char *v, const char *const *set, size_t n)
{
    if (!v)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v, set[i]))
            return true;
    return false;
}

bool store_vm_state_valid(const char *state)
{
    return in_set(state, vm_states, GW_ARRAY_SIZE(vm_states));
}

bool store_job_kind_valid(const char *kind)
{
    return in_set(kind, job_kinds, GW_ARRAY_SIZE(job_kinds));
}

bool store_job_status_valid(const char *status)
{
    return in_set(status, job_statuses, GW_ARRAY_SIZE(job_statuses));
}

bool store_job_status_final(const char *status)
{
    return in_set(status, job_statuses + 2, 3);
}

bool store_hold_type_valid(const char *type)
{
    return in_set(type, hold_types, GW_ARRAY_SIZE(hold_types));
}

int64_t store_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *store_errmsg(const struct store *s)
{
    return s ? s->errmsg : "no store";
}

gw_printf(3, 4) static int fail(struct store *s, int ret, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return ret;
}

/* A failed SQLite call: -EEXIST for a uniqueness conflict, else -EIO. */
static int sql_fail(struct store *s, int rc, const char *what)
{
    int ret = -EIO;

    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        ret = -EEXIST;
    else if (rc == SQLITE_NOMEM)
        ret = -ENOMEM;
    return fail(s, ret, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* A string parameter: present (unless may_be_empty), shorter than max. */
static int check_str(struct store *s, const char *what, const char *v, size_t max,
                     bool may_be_empty)
{
    if (!v || (!may_be_empty && !*v))
        return fail(s, -EINVAL, "%s is empty", what);
    if (strnlen(v, max) >= max)
        return fail(s, -ENAMETOOLONG, "%s is longer than %zu characters", what, max - 1);
    return 0;
}

static sqlite3_stmt *stmt(struct store *s, enum stmt_id id)
{
    if (!s->st[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id],
                                    NULL);
        if (rc != SQLITE_OK) {
            sql_fail(s, rc, "prepare");
            s->st[id] = NULL;
        }
    }
    return s->st[id];
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows; reset it either way. */
static int run(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : sql_fail(s, sqlite3_extended_errcode(s->db), what);

    done(st);
    return ret;
}

static int run_id(struct store *s, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st = stmt(s, id);

    return st ? run(s, st, what) : -EIO;
}

static int begin(struct store *s)
{
    return run_id(s, ST_BEGIN, "begin");
}

static int commit(struct store *s)
{
    int ret = run_id(s, ST_COMMIT, "commit");

    if (ret < 0 && !sqlite3_get_autocommit(s->db))
        run_id(s, ST_ROLLBACK, "rollback");
    return ret;
}

/* End a transaction: commit when ret is 0, else roll back and keep ret. */
static int end(struct store *s, int ret)
{
    if (ret < 0) {
        char keep[sizeof(s->errmsg)];

        memcpy(keep, s->errmsg, sizeof(keep));
        run_id(s, ST_ROLLBACK, "rollback");
        memcpy(s->errmsg, keep, sizeof(keep));
        return ret;
    }
    return commit(s);
}

static void col_str(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    snprintf(dst, n, "%s", v ? (const char *)v : "");
}

static int col_dup(struct store *s, sqlite3_stmt *st, int i, char **dst)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    *dst = NULL;
    if (!v)
        return 0;
    *dst = strdup((const char *)v);
    return *dst ? 0 : fail(s, -ENOMEM, "out of memory");
}

/* Changes made by the last statement. */
static int changes(struct store *s)
{
    return sqlite3_changes(s->db);
}

/*
 * Collect all rows of a bound statement into a growing array of elements of
 * size sz, each filled by row(); the statement is reset afterwards.
 */
typedef int (*row_fn)(struct store *s, sqlite3_stmt *st, void *elem);

static int collect(struct store *s, sqlite3_stmt *st, size_t sz, row_fn row, void **out, size_t *n,
                   void (*clear)(void *))
{
    char *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, ret = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            char *nv = realloc(v, ncap * sz);

            if (!nv) {
                ret = fail(s, -ENOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        memset(v + cnt * sz, 0, sz);
        ret = row(s, st, v + cnt * sz);
        cnt++;
        if (ret < 0)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = sql_fail(s, sqlite3_extended_errcode(s->db), "list");
    done(st);
    if (ret < 0) {
        for (size_t i = 0; i < cnt; i++)
            clear(v + i * sz);
        free(v);
        v = NULL;
        cnt = 0;
    }
    *out = v;
    *n = cnt;
    return ret;
}

/* Fetch at most one row of a bound statement: -ENOENT when none. */
static int one(struct store *s, sqlite3_stmt *st, row_fn row, void *elem, const char *what)
{
    int rc = sqlite3_step(st);
    int ret;

    if (rc == SQLITE_ROW)
        ret = row(s, st, elem);
    else if (rc == SQLITE_DONE)
        ret = fail(s, -ENOENT, "%s not found", what);
    else
        ret = sql_fail(s, sqlite3_extended_errcode(s->db), what);
    done(st);
    return ret;
}

/* ---- open, migrate, close ---- */

static int exec(struct store *s, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        fail(s, -EIO, "%s%s%s", what, *what ? ": " : "", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int pragma_int(struct store *s, const char *sql, int *val)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return sql_fail(s, rc, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *val = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, -EIO, "%s: %s", sql, sqlite3_errstr(rc));
}

int store_schema_version(struct store *s)
{
    int v = -1;

    return pragma_int(s, "PRAGMA user_version", &v) < 0 ? -EIO : v;
}

/* Apply the next migration step, if any: 1 applied, 0 up to date. */
static int migrate_step(struct store *s)
{
    char sql[64];
    int v, ret;

    if (exec(s, "BEGIN IMMEDIATE", "begin migration") < 0)
        return -EIO;
    /* read inside the transaction: another process may have migrated */
    ret = pragma_int(s, "PRAGMA user_version", &v);
    if (ret < 0)
        goto out;
    if (v > STORE_SCHEMA_VERSION) {
        ret = fail(s, -EPROTONOSUPPORT,
                   "schema version %d but this godwitd knows versions up to %d: a newer "
                   "godwit wrote this database; run that version (no downgrades)",
                   v, STORE_SCHEMA_VERSION);
        goto out;
    }
    if (v < 0) {
        ret = fail(s, -EIO, "bad schema version %d", v);
        goto out;
    }
    if (v == STORE_SCHEMA_VERSION) {
        ret = 0;
        goto out;
    }
    ret = exec(s, migrations[v], "");
    if (ret == 0) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        ret = exec(s, sql, "set schema version");
    }
    if (ret == 0) {
        ret = exec(s, "COMMIT", "commit migration");
        if (ret == 0)
            return 1;
        goto out;
    }
    if (ret < 0) {
        char keep[sizeof(s->errmsg)];

        memcpy(keep, s->errmsg, sizeof(keep));
        fail(s, ret, "migration to schema version %d: %s", v + 1, keep);
    }
out:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof(*s));
    char mode[16];
    sqlite3_stmt *st;
    int fd, rc, ret;

    if (!s) {
        gw_fail(err, errlen, -ENOMEM, "out of memory");
        return NULL;
    }
    /* create the file ourselves so that it is 0600 (SQLite gives its WAL
     * and shared-memory files the database's mode) */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
        free(s);
        return NULL;
    }
    close(fd);
    rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        gw_fail(err, errlen, -EIO, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
        store_close(s);
        return NULL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    /* is it a database at all? (reading the schema fails on other files) */
    if (exec(s, "SELECT count(*) FROM sqlite_schema", "read") < 0 ||
        exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL", "configure") < 0)
        goto fail;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sql_fail(s, rc, "journal mode");
        goto fail;
    }
    mode[0] = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        col_str(st, 0, mode, sizeof(mode));
    sqlite3_finalize(st);
    if (strcmp(mode, "wal")) {
        fail(s, -EIO, "cannot switch to WAL mode (journal mode is '%s')", mode);
        goto fail;
    }
    while ((ret = migrate_step(s)) > 0)
        ;
    if (ret < 0)
        goto fail;
    return s;
fail:
    gw_fail(err, errlen, -EIO, "%s: %s", path, s->errmsg);
    store_close(s);
    return NULL;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s);
}

/* ---- host ---- */

int store_host_set(struct store *s, const char *name)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "host name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    st = stmt(s, ST_HOST_SET);
    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, store_now_ms());
    return run(s, st, "set host name"); /* one statement: its own transaction */
}

int store_host_get(struct store *s, char name[STORE_NAME_MAX], int64_t *created_ms)
{
    sqlite3_stmt *st = stmt(s, ST_HOST_GET);
    int rc, ret = 0;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col_str(st, 0, name, STORE_NAME_MAX);
        if (created_ms)
            *created_ms = sqlite3_column_int64(st, 1);
    } else if (rc == SQLITE_DONE) {
        ret = fail(s, -ENOENT, "this host has no name yet");
    } else {
        ret = sql_fail(s, sqlite3_extended_errcode(s->db), "host");
    }
    done(st);
    return ret;
}

/* ---- VMs ---- */

static int vm_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_vm *vm = elem;

    col_str(st, 0, vm->name, sizeof(vm->name));
    col_str(st, 1, vm->uuid, sizeof(vm->uuid));
    vm->memory = (uint64_t)sqlite3_column_int64(st, 2);
    vm->cpus = (uint32_t)sqlite3_column_int64(st, 3);
    col_str(st, 5, vm->state, sizeof(vm->state));
    vm->pid = sqlite3_column_int64(st, 6);
    col_str(st, 7, vm->qmp_path, sizeof(vm->qmp_path));
    col_str(st, 8, vm->console_path, sizeof(vm->console_path));
    vm->exit_status = sqlite3_column_int(st, 9);
    vm->created_ms = sqlite3_column_int64(st, 10);
    vm->updated_ms = sqlite3_column_int64(st, 11);
    return col_dup(s, st, 4, &vm->config);
}

static void vm_clear(void *elem)
{
    store_vm_clear(elem);
}

static int vm_check(struct store *s, const struct store_vm *vm)
{
    int ret;

    if ((ret = check_str(s, "VM name", vm->name, STORE_NAME_MAX, false)) < 0 ||
        (ret = check_str(s, "VM uuid", vm->uuid, STORE_UUID_MAX, false)) < 0 ||
        (ret = check_str(s, "VM state", vm->state, STORE_WORD_MAX, false)) < 0 ||
        (ret = check_str(s, "QMP socket path", vm->qmp_path, STORE_PATH_MAX, true)) < 0 ||
        (ret = check_str(s, "console path", vm->console_path, STORE_PATH_MAX, true)) < 0)
        return ret;
    if (!store_vm_state_valid(vm->state))
        return fail(s, -EINVAL, "unknown VM state '%s'", vm->state);
    if (vm->memory > INT64_MAX)
        return fail(s, -EINVAL, "VM memory too large");
    return 0;
}

static int vm_write(struct store *s, enum stmt_id id, const struct store_vm *vm)
{
    sqlite3_stmt *st;
    int ret = vm_check(s, vm);

    if (ret < 0)
        return ret;
    st = stmt(s, id);
    if (!st)
        return -EIO;
    bind_text(st, 1, vm->name);
    bind_text(st, 2, vm->uuid);
    sqlite3_bind_int64(st, 3, (int64_t)vm->memory);
    sqlite3_bind_int64(st, 4, vm->cpus);
    bind_text(st, 5, vm->config);
    bind_text(st, 6, vm->state);
    sqlite3_bind_int64(st, 7, vm->pid);
    bind_text(st, 8, vm->qmp_path);
    bind_text(st, 9, vm->console_path);
    sqlite3_bind_int(st, 10, vm->exit_status);
    sqlite3_bind_int64(st, 11, store_now_ms());
    ret = run(s, st, "write VM");
    if (ret == -EEXIST)
        fail(s, ret, "a VM named '%s' or with uuid %s exists already", vm->name, vm->uuid);
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
    int ret = check_str(s, "VM name", name, STORE_NAME_MAX, false);

    memset(out, 0, sizeof(*out));
    if (ret < 0)
        return ret;
    st = stmt(s, ST_VM_GET);
    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    ret = one(s, st, vm_row, out, "VM");
    if (ret == -ENOENT)
        fail(s, ret, "no VM named '%s'", name);
    if (ret < 0)
        store_vm_clear(out);
    return ret;
}

int store_vm_list(struct store *s, struct store_vm **out, size_t *n)
{
    sqlite3_stmt *st = stmt(s, ST_VM_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    return collect(s, st, sizeof(**out), vm_row, (void **)out, n, vm_clear);
}

int store_vm_delete(struct store *s, const char *name)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "VM name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    st = stmt(s, ST_VM_DELETE);
    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    ret = run(s, st, "delete VM");
    if (ret == 0 && changes(s) == 0)
        ret = fail(s, -ENOENT, "no VM named '%s'", name);
    return ret;
}

int store_vm_set_state(struct store *s, const char *name, const char *state, int64_t pid,
                       int exit_status)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "VM name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    if (!store_vm_state_valid(state))
        return fail(s, -EINVAL, "unknown VM state '%s'", state ? state : "(null)");
    st = stmt(s, ST_VM_SET_STATE);
    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    bind_text(st, 2, state);
    sqlite3_bind_int64(st, 3, pid);
    sqlite3_bind_int(st, 4, exit_status);
    sqlite3_bind_int64(st, 5, store_now_ms());
    ret = run(s, st, "set VM state");
    if (ret == 0 && changes(s) == 0)
        ret = fail(s, -ENOENT, "no VM named '%s'", name);
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
    col_str(st, 0, p->name, sizeof(p->name));
    col_str(st, 1, p->address, sizeof(p->address));
    col_str(st, 2, p->fingerprint, sizeof(p->fingerprint));
    p->added_ms = sqlite3_column_int64(st, 3);
    return 0;
}

static void nothing(void *elem)
{
    (void)elem;
}

int store_peer_add(struct store *s, const struct store_peer *p)
{
    sqlite3_stmt *st;
    int ret;

    if ((ret = check_str(s, "peer name", p->name, STORE_NAME_MAX, false)) < 0 ||
        (ret = check_str(s, "peer address", p->address, STORE_ADDR_MAX, false)) < 0 ||
        (ret = check_str(s, "peer fingerprint", p->fingerprint, STORE_FPR_MAX, false)) < 0)
        return ret;
    st = stmt(s, ST_PEER_ADD);
    if (!st)
        return -EIO;
    bind_text(st, 1, p->name);
    bind_text(st, 2, p->address);
    bind_text(st, 3, p->fingerprint);
    sqlite3_bind_int64(st, 4, store_now_ms());
    ret = run(s, st, "add peer");
    if (ret == -EEXIST)
        fail(s, ret, "a peer named '%s' or with that certificate exists already", p->name);
    return ret;
}

int store_peer_get(struct store *s, const char *name, struct store_peer *out)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "peer name", name, STORE_NAME_MAX, false);

    memset(out, 0, sizeof(*out));
    if (ret < 0)
        return ret;
    st = stmt(s, ST_PEER_GET);
    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    ret = one(s, st, peer_row, out, "peer");
    if (ret == -ENOENT)
        fail(s, ret, "no peer named '%s'", name);
    return ret;
}

int store_peer_find_fingerprint(struct store *s, const char *fpr, struct store_peer *out)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "fingerprint", fpr, STORE_FPR_MAX, false);

    memset(out, 0, sizeof(*out));
    if (ret < 0)
        return ret;
    st = stmt(s, ST_PEER_FPR);
    if (!st)
        return -EIO;
    bind_text(st, 1, fpr);
    ret = one(s, st, peer_row, out, "peer");
    if (ret == -ENOENT)
        fail(s, ret, "no peer has certificate %s", fpr);
    return ret;
}

int store_peer_list(struct store *s, struct store_peer **out, size_t *n)
{
    sqlite3_stmt *st = stmt(s, ST_PEER_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    return collect(s, st, sizeof(**out), peer_row, (void **)out, n, nothing);
}

int store_peer_remove(struct store *s, const char *name)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "peer name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    st = stmt(s, ST_PEER_REMOVE);
    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    ret = run(s, st, "remove peer");
    if (ret == 0 && changes(s) == 0)
        ret = fail(s, -ENOENT, "no peer named '%s'", name);
    return ret;
}

/* ---- tokens ---- */

int store_token_add(struct store *s, const char *id, const char *secret_hash, int64_t expires_ms)
{
    sqlite3_stmt *st;
    int ret;

    if ((ret = check_str(s, "token id", id, STORE_NAME_MAX, false)) < 0 ||
        (ret = check_str(s, "token hash", secret_hash, STORE_FPR_MAX, false)) < 0)
        return ret;
    st = stmt(s, ST_TOKEN_ADD);
    if (!st)
        return -EIO;
    bind_text(st, 1, id);
    bind_text(st, 2, secret_hash);
    sqlite3_bind_int64(st, 3, expires_ms);
    return run(s, st, "add token");
}

int store_token_consume(struct store *s, const char *id, const char *secret_hash, int64_t now_ms)
{
    sqlite3_stmt *st;
    int ret, rc;

    if ((ret = check_str(s, "token id", id, STORE_NAME_MAX, false)) < 0 ||
        (ret = check_str(s, "token hash", secret_hash, STORE_FPR_MAX, false)) < 0)
        return ret;
    if ((ret = begin(s)) < 0)
        return ret;
    st = stmt(s, ST_TOKEN_CONSUME);
    if (!st)
        return end(s, -EIO);
    bind_text(st, 1, id);
    bind_text(st, 2, secret_hash);
    sqlite3_bind_int64(st, 3, now_ms);
    ret = run(s, st, "use token");
    if (ret == 0 && changes(s) == 0) {
        /* not consumed: say why */
        st = stmt(s, ST_TOKEN_GET);
        if (!st)
            return end(s, -EIO);
        bind_text(st, 1, id);
        bind_text(st, 2, secret_hash);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_int(st, 0))
            ret = fail(s, -EALREADY, "the token was used already");
        else if (rc == SQLITE_ROW)
            ret = fail(s, -ETIMEDOUT, "the token expired");
        else if (rc == SQLITE_DONE)
            ret = fail(s, -ENOENT, "unknown token");
        else
            ret = sql_fail(s, sqlite3_extended_errcode(s->db), "token");
        done(st);
    }
    return end(s, ret);
}

int store_token_purge(struct store *s, int64_t now_ms, unsigned *n)
{
    sqlite3_stmt *st = stmt(s, ST_TOKEN_PURGE);
    int ret;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    ret = run(s, st, "purge tokens");
    if (n)
        *n = ret == 0 ? (unsigned)changes(s) : 0;
    return ret;
}

/* ---- events recorded with the change they describe ---- */

/*
 * Inside a transaction: add event type for job id with data (a JSON object,
 * consumed), so that the change and its event commit together.
 */
static int job_event(struct store *s, int64_t id, const char *type, json_t *data)
{
    char subject[32];
    char *text;
    sqlite3_stmt *st;
    int ret;

    if (!data)
        return fail(s, -ENOMEM, "out of memory");
    text = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(data);
    if (!text)
        return fail(s, -ENOMEM, "out of memory");
    snprintf(subject, sizeof(subject), "job/%" PRId64, id);
    st = stmt(s, ST_EVENT_ADD);
    if (!st) {
        free(text);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, store_now_ms());
    bind_text(st, 2, type);
    bind_text(st, 3, subject);
    bind_text(st, 4, text);
    ret = run(s, st, "add event");
    free(text);
    return ret;
}

/* ---- jobs ---- */

static int job_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_job *j = elem;
    int ret;

    j->id = sqlite3_column_int64(st, 0);
    col_str(st, 1, j->kind, sizeof(j->kind));
    col_str(st, 2, j->direction, sizeof(j->direction));
    col_str(st, 3, j->vm, sizeof(j->vm));
    col_str(st, 4, j->peer, sizeof(j->peer));
    col_str(st, 5, j->phase, sizeof(j->phase));
    col_str(st, 6, j->status, sizeof(j->status));
    col_str(st, 7, j->started_by, sizeof(j->started_by));
    j->created_ms = sqlite3_column_int64(st, 8);
    j->started_ms = sqlite3_column_int64(st, 9);
    j->ended_ms = sqlite3_column_int64(st, 10);
    if ((ret = col_dup(s, st, 11, &j->options)) < 0 || (ret = col_dup(s, st, 12, &j->figures)) < 0)
        return ret;
    return col_dup(s, st, 13, &j->error);
}

static void job_clear(void *elem)
{
    store_job_clear(elem);
}

int store_job_create(struct store *s, const struct store_job *j, int64_t *id)
{
    sqlite3_stmt *st;
    int ret;

    if ((ret = check_str(s, "job kind", j->kind, STORE_WORD_MAX, false)) < 0 ||
        (ret = check_str(s, "job direction", j->direction, STORE_WORD_MAX, false)) < 0 ||
        (ret = check_str(s, "VM name", j->vm, STORE_NAME_MAX, false)) < 0 ||
        (ret = check_str(s, "peer name", j->peer, STORE_NAME_MAX, false)) < 0 ||
        (ret = check_str(s, "job phase", j->phase, STORE_WORD_MAX, false)) < 0 ||
        (ret = check_str(s, "started by", j->started_by, STORE_WHO_MAX, true)) < 0)
        return ret;
    if (!store_job_kind_valid(j->kind))
        return fail(s, -EINVAL, "unknown job kind '%s'", j->kind);
    if (!in_set(j->direction, job_dirs, GW_ARRAY_SIZE(job_dirs)))
        return fail(s, -EINVAL, "unknown job direction '%s'", j->direction);
    if ((ret = begin(s)) < 0)
        return ret;
    st = stmt(s, ST_JOB_CREATE);
    if (!st)
        return end(s, -EIO);
    bind_text(st, 1, j->kind);
    bind_text(st, 2, j->direction);
    bind_text(st, 3, j->vm);
    bind_text(st, 4, j->peer);
    bind_text(st, 5, j->phase);
    bind_text(st, 6, j->started_by);
    sqlite3_bind_int64(st, 7, store_now_ms());
    bind_text(st, 8, j->options);
    ret = run(s, st, "create job");
    if (ret == -EEXIST)
        fail(s, ret, "VM '%s' has an unfinished job already", j->vm);
    if (ret == 0) {
        int64_t jid = sqlite3_last_insert_rowid(s->db);

        if (id)
            *id = jid;
        ret = job_event(s, jid, "job-created",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", j->kind, "direction",
                                  j->direction, "vm", j->vm, "peer", j->peer, "phase", j->phase));
    }
    return end(s, ret);
}

int store_job_get(struct store *s, int64_t id, struct store_job *out)
{
    sqlite3_stmt *st = stmt(s, ST_JOB_GET);
    int ret;

    memset(out, 0, sizeof(*out));
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    ret = one(s, st, job_row, out, "job");
    if (ret == -ENOENT)
        fail(s, ret, "no job %" PRId64, id);
    if (ret < 0)
        store_job_clear(out);
    return ret;
}

int store_job_list(struct store *s, bool active_only, struct store_job **out, size_t *n)
{
    sqlite3_stmt *st = stmt(s, active_only ? ST_JOB_LIST_ACTIVE : ST_JOB_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    return collect(s, st, sizeof(**out), job_row, (void **)out, n, job_clear);
}

/* Inside a transaction: the job's status into buf; -ENOENT if none. */
static int job_status(struct store *s, int64_t id, char *buf, size_t n)
{
    sqlite3_stmt *st = stmt(s, ST_JOB_STATUS);
    int rc, ret = 0;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        col_str(st, 0, buf, n);
    else if (rc == SQLITE_DONE)
        ret = fail(s, -ENOENT, "no job %" PRId64, id);
    else
        ret = sql_fail(s, sqlite3_extended_errcode(s->db), "job");
    done(st);
    return ret;
}

/* Inside a transaction: -EINVAL when the job is finished. */
static int job_unfinished(struct store *s, int64_t id)
{
    char status[STORE_WORD_MAX];
    int ret = job_status(s, id, status, sizeof(status));

    if (ret == 0 && store_job_status_final(status))
        ret = fail(s, -EINVAL, "job %" PRId64 " is %s already", id, status);
    return ret;
}

static int job_set_status(struct store *s, int64_t id, const char *status)
{
    sqlite3_stmt *st = stmt(s, ST_JOB_SET_STATUS);

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, status);
    return run(s, st, "set job status");
}

int store_job_set_phase(struct store *s, int64_t id, const char *phase)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "job phase", phase, STORE_WORD_MAX, false);

    if (ret < 0 || (ret = begin(s)) < 0)
        return ret;
    ret = job_unfinished(s, id);
    if (ret == 0) {
        st = stmt(s, ST_JOB_SET_PHASE);
        if (!st)
            return end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, phase);
        sqlite3_bind_int64(st, 3, store_now_ms());
        ret = run(s, st, "set job phase");
    }
    if (ret == 0)
        ret = job_event(s, id, "job-phase", json_pack("{s:s}", "phase", phase));
    return end(s, ret);
}

int store_job_set_figures(struct store *s, int64_t id, const char *figures)
{
    sqlite3_stmt *st = stmt(s, ST_JOB_SET_FIGURES);
    int ret;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, figures);
    ret = run(s, st, "set job figures");
    if (ret == 0 && changes(s) == 0)
        ret = fail(s, -ENOENT, "no job %" PRId64, id);
    return ret;
}

int store_job_finish(struct store *s, int64_t id, const char *status, const char *error,
                     const char *figures)
{
    sqlite3_stmt *st;
    int64_t now = store_now_ms();
    int ret;

    if (!store_job_status_final(status))
        return fail(s, -EINVAL, "'%s' is not a final job status", status ? status : "(null)");
    if ((ret = begin(s)) < 0)
        return ret;
    ret = job_unfinished(s, id);
    if (ret == 0) {
        st = stmt(s, ST_JOB_FINISH);
        if (!st)
            return end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, status);
        bind_text(st, 3, error);
        bind_text(st, 4, figures);
        sqlite3_bind_int64(st, 5, now);
        ret = run(s, st, "finish job");
    }
    if (ret == 0) {
        st = stmt(s, ST_JOB_LIFT_ALL);
        if (!st)
            return end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now);
        ret = run(s, st, "lift holds");
    }
    if (ret == 0)
        ret = job_event(s, id, "job-finished",
                        json_pack("{s:s, s:s?}", "status", status, "error", error));
    return end(s, ret);
}

void store_job_clear(struct store_job *j)
{
    if (!j)
        return;
    free(j->options);
    free(j->figures);
    free(j->error);
    j->options = j->figures = j->error = NULL;
}

void store_job_list_free(struct store_job *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_job_clear(&v[i]);
    free(v);
}

/* ---- holds ---- */

static int hold_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_hold *h = elem;

    h->id = sqlite3_column_int64(st, 0);
    h->job_id = sqlite3_column_int64(st, 1);
    col_str(st, 2, h->type, sizeof(h->type));
    col_str(st, 3, h->reason, sizeof(h->reason));
    col_str(st, 4, h->set_by, sizeof(h->set_by));
    h->set_ms = sqlite3_column_int64(st, 5);
    h->lifted_ms = sqlite3_column_int64(st, 7);
    col_str(st, 8, h->lifted_by, sizeof(h->lifted_by));
    return col_dup(s, st, 6, &h->lift);
}

static void hold_clear(void *elem)
{
    store_hold_clear(elem);
}

int store_hold_add(struct store *s, const struct store_hold *h, int64_t *id)
{
    sqlite3_stmt *st;
    int64_t hid = 0;
    int ret;

    if ((ret = check_str(s, "hold type", h->type, STORE_WORD_MAX, false)) < 0 ||
        (ret = check_str(s, "hold reason", h->reason, STORE_TEXT_MAX, false)) < 0 ||
        (ret = check_str(s, "hold set by", h->set_by, STORE_WHO_MAX, false)) < 0)
        return ret;
    if (!store_hold_type_valid(h->type))
        return fail(s, -EINVAL, "unknown hold type '%s'", h->type);
    if ((ret = begin(s)) < 0)
        return ret;
    ret = job_unfinished(s, h->job_id);
    if (ret == 0) {
        st = stmt(s, ST_HOLD_ADD);
        if (!st)
            return end(s, -EIO);
        sqlite3_bind_int64(st, 1, h->job_id);
        bind_text(st, 2, h->type);
        bind_text(st, 3, h->reason);
        bind_text(st, 4, h->set_by);
        sqlite3_bind_int64(st, 5, store_now_ms());
        bind_text(st, 6, h->lift);
        ret = run(s, st, "add hold");
        hid = sqlite3_last_insert_rowid(s->db);
        if (ret == 0 && id)
            *id = hid;
    }
    if (ret == 0)
        ret = job_set_status(s, h->job_id, "held");
    if (ret == 0)
        ret = job_event(s, h->job_id, "hold-set",
                        json_pack("{s:I, s:s, s:s, s:s}", "hold", (json_int_t)hid, "type", h->type,
                                  "reason", h->reason, "set_by", h->set_by));
    return end(s, ret);
}

int store_hold_get(struct store *s, int64_t id, struct store_hold *out)
{
    sqlite3_stmt *st = stmt(s, ST_HOLD_GET);
    int ret;

    memset(out, 0, sizeof(*out));
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    ret = one(s, st, hold_row, out, "hold");
    if (ret == -ENOENT)
        fail(s, ret, "no hold %" PRId64, id);
    if (ret < 0)
        store_hold_clear(out);
    return ret;
}

int store_hold_list(struct store *s, int64_t job_id, bool active_only, struct store_hold **out,
                    size_t *n)
{
    sqlite3_stmt *st = stmt(s, active_only ? ST_HOLD_LIST_ACTIVE : ST_HOLD_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, job_id);
    return collect(s, st, sizeof(**out), hold_row, (void **)out, n, hold_clear);
}

int store_hold_lift(struct store *s, int64_t id, const char *lifted_by)
{
    struct store_hold h;
    sqlite3_stmt *st;
    int64_t active = 0;
    int ret = check_str(s, "lifted by", lifted_by, STORE_WHO_MAX, false);

    if (ret < 0 || (ret = begin(s)) < 0)
        return ret;
    ret = store_hold_get(s, id, &h);
    store_hold_clear(&h);
    if (ret == 0 && h.lifted_ms)
        ret = fail(s, -EALREADY, "hold %" PRId64 " was lifted already", id);
    if (ret == 0) {
        st = stmt(s, ST_HOLD_LIFT);
        if (!st)
            return end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, store_now_ms());
        bind_text(st, 3, lifted_by);
        ret = run(s, st, "lift hold");
    }
    if (ret == 0) {
        st = stmt(s, ST_HOLD_ACTIVE_COUNT);
        if (!st)
            return end(s, -EIO);
        sqlite3_bind_int64(st, 1, h.job_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            active = sqlite3_column_int64(st, 0);
        else
            ret = sql_fail(s, sqlite3_extended_errcode(s->db), "count holds");
        done(st);
    }
    if (ret == 0 && active == 0) {
        char status[STORE_WORD_MAX];

        ret = job_status(s, h.job_id, status, sizeof(status));
        if (ret == 0 && !strcmp(status, "held"))
            ret = job_set_status(s, h.job_id, "running");
    }
    if (ret == 0)
        ret = job_event(s, h.job_id, "hold-lifted",
                        json_pack("{s:I, s:s, s:s, s:b}", "hold", (json_int_t)id, "type", h.type,
                                  "lifted_by", lifted_by, "job_runs", active == 0));
    return end(s, ret);
}

void store_hold_clear(struct store_hold *h)
{
    if (!h)
        return;
    free(h->lift);
    h->lift = NULL;
}

void store_hold_list_free(struct store_hold *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_hold_clear(&v[i]);
    free(v);
}

/* ---- events ---- */

static int event_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_event *e = elem;

    e->id = sqlite3_column_int64(st, 0);
    e->time_ms = sqlite3_column_int64(st, 1);
    col_str(st, 2, e->type, sizeof(e->type));
    col_str(st, 3, e->subject, sizeof(e->subject));
    return col_dup(s, st, 4, &e->data);
}

static void event_clear(void *elem)
{
    struct store_event *e = elem;

    free(e->data);
    e->data = NULL;
}

int store_event_add(struct store *s, const char *type, const char *subject, const char *data,
                    int64_t *id)
{
    sqlite3_stmt *st;
    int ret;

    if ((ret = check_str(s, "event type", type, STORE_WORD_MAX, false)) < 0 ||
        (ret = check_str(s, "event subject", subject, STORE_WHO_MAX, true)) < 0)
        return ret;
    st = stmt(s, ST_EVENT_ADD);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, store_now_ms());
    bind_text(st, 2, type);
    bind_text(st, 3, subject);
    bind_text(st, 4, data);
    ret = run(s, st, "add event");
    if (ret == 0 && id)
        *id = sqlite3_last_insert_rowid(s->db);
    return ret;
}

int store_event_list_since(struct store *s, int64_t since_id, unsigned limit,
                           struct store_event **out, size_t *n)
{
    sqlite3_stmt *st = stmt(s, ST_EVENT_SINCE);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, since_id);
    sqlite3_bind_int64(st, 2, limit);
    return collect(s, st, sizeof(**out), event_row, (void **)out, n, event_clear);
}

int store_event_list_subject(struct store *s, const char *subject, int64_t since_id, unsigned limit,
                             struct store_event **out, size_t *n)
{
    sqlite3_stmt *st;
    int ret = check_str(s, "event subject", subject, STORE_WHO_MAX, false);

    *out = NULL;
    *n = 0;
    if (ret < 0)
        return ret;
    st = stmt(s, ST_EVENT_SUBJECT);
    if (!st)
        return -EIO;
    bind_text(st, 1, subject);
    sqlite3_bind_int64(st, 2, since_id);
    sqlite3_bind_int64(st, 3, limit);
    return collect(s, st, sizeof(**out), event_row, (void **)out, n, event_clear);
}

int store_event_trim(struct store *s, unsigned keep, unsigned *n)
{
    sqlite3_stmt *st = stmt(s, ST_EVENT_TRIM);
    int ret;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, keep);
    ret = run(s, st, "trim events");
    if (n)
        *n = ret == 0 ? (unsigned)changes(s) : 0;
    return ret;
}

void store_event_list_free(struct store_event *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        event_clear(&v[i]);
    free(v);
}
