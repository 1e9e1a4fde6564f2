/*
 * The host agent's store on SQLite: the schema and its migrations, every
 * SQL statement godwitd runs (see store.h for the conventions), the shared
 * statement helpers (store_int.h), opening and closing, the host record
 * and the event log.  VMs, peers and tokens: store_registry.c; jobs and
 * holds: store_jobs.c.
 */
#include "godwitd/store_int.h"

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

static const char *const vm_states[] = {"defined",  "starting",  "running", "stopping",
                                        "stopped",  "suspended", "crashed", "migrating",
                                        "migrated", "incoming"};
static const char *const job_kinds[] = {"live", "cold", "suspended"};
static const char *const job_dirs[] = {"out", "in"};
static const char *const job_statuses[] = {"running", "held",      "done",
                                           "failed",  "cancelled", "reverted"};
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

bool store_job_direction_valid(const char *dir)
{
    return in_set(dir, job_dirs, GW_ARRAY_SIZE(job_dirs));
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
    return in_set(status, job_statuses + 2, 4);
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

int store_fail(struct store *s, int ret, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return ret;
}

/* A failed SQLite call: -EEXIST for a uniqueness conflict, else -EIO. */
int store_sql_fail(struct store *s, int rc, const char *what)
{
    int ret = -EIO;

    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        ret = -EEXIST;
    else if (rc == SQLITE_NOMEM)
        ret = -ENOMEM;
    return store_fail(s, ret, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* A string parameter: present (unless may_be_empty), shorter than max. */
int store_check_str(struct store *s, const char *what, const char *v, size_t max, bool may_be_empty)
{
    if (!v || (!may_be_empty && !*v))
        return store_fail(s, -EINVAL, "%s is empty", what);
    if (strnlen(v, max) >= max)
        return store_fail(s, -ENAMETOOLONG, "%s is longer than %zu characters", what, max - 1);
    return 0;
}

sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id)
{
    if (!s->st[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id],
                                    NULL);
        if (rc != SQLITE_OK) {
            store_sql_fail(s, rc, "prepare");
            s->st[id] = NULL;
        }
    }
    return s->st[id];
}

void store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void store_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows; reset it either way. */
int store_run(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : store_sql_fail(s, sqlite3_extended_errcode(s->db), what);

    store_done(st);
    return ret;
}

int store_run_id(struct store *s, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st = store_stmt(s, id);

    return st ? store_run(s, st, what) : -EIO;
}

int store_begin(struct store *s)
{
    return store_run_id(s, ST_BEGIN, "begin");
}

int store_commit(struct store *s)
{
    int ret = store_run_id(s, ST_COMMIT, "commit");

    if (ret < 0 && !sqlite3_get_autocommit(s->db))
        store_run_id(s, ST_ROLLBACK, "rollback");
    return ret;
}

/* End a transaction: commit when ret is 0, else roll back and keep ret. */
int store_end(struct store *s, int ret)
{
    if (ret < 0) {
        char keep[sizeof(s->errmsg)];

        memcpy(keep, s->errmsg, sizeof(keep));
        store_run_id(s, ST_ROLLBACK, "rollback");
        memcpy(s->errmsg, keep, sizeof(keep));
        return ret;
    }
    return store_commit(s);
}

void store_col_str(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    snprintf(dst, n, "%s", v ? (const char *)v : "");
}

int store_col_dup(struct store *s, sqlite3_stmt *st, int i, char **dst)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    *dst = NULL;
    if (!v)
        return 0;
    *dst = strdup((const char *)v);
    return *dst ? 0 : store_fail(s, -ENOMEM, "out of memory");
}

/* Changes made by the last statement. */
int store_changes(struct store *s)
{
    return sqlite3_changes(s->db);
}

/*
 * Collect all rows of a bound statement into a growing array of elements of
 * size sz, each filled by row(); the statement is reset afterwards.
 */

int store_collect(struct store *s, sqlite3_stmt *st, size_t sz, store_row_fn row, void **out,
                  size_t *n, void (*clear)(void *))
{
    char *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, ret = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            char *nv = realloc(v, ncap * sz);

            if (!nv) {
                ret = store_fail(s, -ENOMEM, "out of memory");
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
        ret = store_sql_fail(s, sqlite3_extended_errcode(s->db), "list");
    store_done(st);
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
int store_one(struct store *s, sqlite3_stmt *st, store_row_fn row, void *elem, const char *what)
{
    int rc = sqlite3_step(st);
    int ret;

    if (rc == SQLITE_ROW)
        ret = row(s, st, elem);
    else if (rc == SQLITE_DONE)
        ret = store_fail(s, -ENOENT, "%s not found", what);
    else
        ret = store_sql_fail(s, sqlite3_extended_errcode(s->db), what);
    store_done(st);
    return ret;
}

/* ---- open, migrate, close ---- */

static int exec(struct store *s, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        store_fail(s, -EIO, "%s%s%s", what, *what ? ": " : "", msg ? msg : sqlite3_errstr(rc));
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
        return store_sql_fail(s, rc, sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *val = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : store_fail(s, -EIO, "%s: %s", sql, sqlite3_errstr(rc));
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
        ret = store_fail(s, -EPROTONOSUPPORT,
                         "schema version %d but this godwitd knows versions up to %d: a newer "
                         "godwit wrote this database; run that version (no downgrades)",
                         v, STORE_SCHEMA_VERSION);
        goto out;
    }
    if (v < 0) {
        ret = store_fail(s, -EIO, "bad schema version %d", v);
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
        store_fail(s, ret, "migration to schema version %d: %s", v + 1, keep);
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
        store_sql_fail(s, rc, "journal mode");
        goto fail;
    }
    mode[0] = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        store_col_str(st, 0, mode, sizeof(mode));
    sqlite3_finalize(st);
    if (strcmp(mode, "wal")) {
        store_fail(s, -EIO, "cannot switch to WAL mode (journal mode is '%s')", mode);
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
    int ret = store_check_str(s, "host name", name, STORE_NAME_MAX, false);

    if (ret < 0)
        return ret;
    st = store_stmt(s, ST_HOST_SET);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, store_now_ms());
    return store_run(s, st, "set host name"); /* one statement: its own transaction */
}

int store_host_get(struct store *s, char name[STORE_NAME_MAX], int64_t *created_ms)
{
    sqlite3_stmt *st = store_stmt(s, ST_HOST_GET);
    int rc, ret = 0;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        store_col_str(st, 0, name, STORE_NAME_MAX);
        if (created_ms)
            *created_ms = sqlite3_column_int64(st, 1);
    } else if (rc == SQLITE_DONE) {
        ret = store_fail(s, -ENOENT, "this host has no name yet");
    } else {
        ret = store_sql_fail(s, sqlite3_extended_errcode(s->db), "host");
    }
    store_done(st);
    return ret;
}

/* ---- events ---- */

static int event_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_event *e = elem;

    e->id = sqlite3_column_int64(st, 0);
    e->time_ms = sqlite3_column_int64(st, 1);
    store_col_str(st, 2, e->type, sizeof(e->type));
    store_col_str(st, 3, e->subject, sizeof(e->subject));
    return store_col_dup(s, st, 4, &e->data);
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

    if ((ret = store_check_str(s, "event type", type, STORE_WORD_MAX, false)) < 0 ||
        (ret = store_check_str(s, "event subject", subject, STORE_WHO_MAX, true)) < 0)
        return ret;
    st = store_stmt(s, ST_EVENT_ADD);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, store_now_ms());
    store_bind_text(st, 2, type);
    store_bind_text(st, 3, subject);
    store_bind_text(st, 4, data);
    ret = store_run(s, st, "add event");
    if (ret == 0 && id)
        *id = sqlite3_last_insert_rowid(s->db);
    return ret;
}

int store_event_list_since(struct store *s, int64_t since_id, unsigned limit,
                           struct store_event **out, size_t *n)
{
    sqlite3_stmt *st = store_stmt(s, ST_EVENT_SINCE);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, since_id);
    sqlite3_bind_int64(st, 2, limit);
    return store_collect(s, st, sizeof(**out), event_row, (void **)out, n, event_clear);
}

int store_event_list_subject(struct store *s, const char *subject, int64_t since_id, unsigned limit,
                             struct store_event **out, size_t *n)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "event subject", subject, STORE_WHO_MAX, false);

    *out = NULL;
    *n = 0;
    if (ret < 0)
        return ret;
    st = store_stmt(s, ST_EVENT_SUBJECT);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, subject);
    sqlite3_bind_int64(st, 2, since_id);
    sqlite3_bind_int64(st, 3, limit);
    return store_collect(s, st, sizeof(**out), event_row, (void **)out, n, event_clear);
}

int store_event_trim(struct store *s, unsigned keep, unsigned *n)
{
    sqlite3_stmt *st = store_stmt(s, ST_EVENT_TRIM);
    int ret;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, keep);
    ret = store_run(s, st, "trim events");
    if (n)
        *n = ret == 0 ? (unsigned)store_changes(s) : 0;
    return ret;
}

void store_event_list_free(struct store_event *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        event_clear(&v[i]);
    free(v);
}
