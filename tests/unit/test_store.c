/*
 * The host agent's store (src/godwitd/store.c) on real database files in a
 * temporary directory: schema and migrations, WAL, every table's functions,
 * single-use tokens, jobs and holds, event retention, bounds, and a second
 * connection seeing committed data.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "board_check.h"
#include "godwitd/store.h"

static char dir[64], path[128];

static struct store *open_ok(void)
{
    char err[256] = "";
    struct store *s = store_open(path, err, sizeof(err));

    if (!s)
        printf("     store_open: %s\n", err);
    return s;
}

/* Run SQL on the file directly, as another program would. */
static int raw_exec(const char *sql)
{
    sqlite3 *db;
    int rc = sqlite3_open(path, &db);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static void fill_vm(struct store_vm *vm, const char *name, const char *uuid)
{
    memset(vm, 0, sizeof(*vm));
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    snprintf(vm->uuid, sizeof(vm->uuid), "%s", uuid);
    vm->memory = 512ull << 20;
    vm->cpus = 2;
    snprintf(vm->state, sizeof(vm->state), "defined");
    vm->exit_status = -1;
    vm->config = (char *)"{\"memory\":\"512M\"}";
}

static void test_open(void)
{
    struct store *s;
    struct stat st;
    char err[256] = "", name[STORE_NAME_MAX];
    int64_t created = 0, created2 = 0;

    s = open_ok();
    CHECK(s != NULL, "store_open creates a new database");
    if (!s)
        return;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "database file is 0600");
    CHECK_EQ(store_schema_version(s), STORE_SCHEMA_VERSION, "user_version is the latest schema");
    CHECK(store_host_get(s, name, &created) == -ENOENT, "no host name before it is set");
    CHECK(store_host_set(s, "hosta") == 0, "set host name");
    CHECK(store_host_get(s, name, &created) == 0 && !strcmp(name, "hosta") && created > 0,
          "host name read back");
    {
        char wal[160];

        snprintf(wal, sizeof(wal), "%s-wal", path);
        CHECK(stat(wal, &st) == 0 && (st.st_mode & 0777) == 0600, "WAL file is 0600 too");
    }
    CHECK(store_host_set(s, "hostb") == 0 && store_host_get(s, name, &created2) == 0 &&
              !strcmp(name, "hostb") && created2 == created,
          "renaming the host keeps its created time");
    store_close(s);
    store_close(NULL);

    s = open_ok();
    CHECK(s != NULL, "reopen");
    if (!s)
        return;
    CHECK(store_host_get(s, name, NULL) == 0 && !strcmp(name, "hostb"), "reopen keeps data");
    CHECK_EQ(store_schema_version(s), STORE_SCHEMA_VERSION, "reopen: migrations not re-applied");
    store_close(s);

    /* WAL mode is persistent in the file */
    {
        sqlite3 *db;
        sqlite3_stmt *q;
        const char *mode = "";

        sqlite3_open(path, &db);
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL);
        if (sqlite3_step(q) == SQLITE_ROW)
            mode = (const char *)sqlite3_column_text(q, 0);
        CHECK(!strcmp(mode, "wal"), "journal mode is WAL (got %s)", mode);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }

    /* a newer schema is refused, the file is left alone */
    CHECK(raw_exec("PRAGMA user_version = 99") == SQLITE_OK, "set user_version 99");
    s = store_open(path, err, sizeof(err));
    CHECK(s == NULL, "a database from a newer godwit is refused");
    CHECK(strstr(err, "99") && strstr(err, "newer"), "with a clear message: %s", err);
    store_close(s);
    CHECK(raw_exec("PRAGMA user_version = 1") == SQLITE_OK, "set user_version back");

    /* a failing migration step leaves the file as it was */
    {
        char other[160];
        sqlite3 *db;
        sqlite3_stmt *q;
        int v = -1, rows = -1;

        snprintf(other, sizeof(other), "%s/old.db", dir);
        sqlite3_open(other, &db);
        sqlite3_exec(db, "CREATE TABLE vms (x); INSERT INTO vms VALUES (1)", NULL, NULL, NULL);
        sqlite3_close(db);
        s = store_open(other, err, sizeof(err));
        CHECK(s == NULL && strstr(err, "migration to schema version 1"),
              "a migration step that fails is reported: %s", err);
        store_close(s);
        sqlite3_open(other, &db);
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL);
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &q, NULL);
        if (sqlite3_step(q) == SQLITE_ROW)
            rows = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
        CHECK(v == 0 && rows == 1, "rolled back: version %d, %d schema objects", v, rows);
        unlink(other);
    }

    /* not a database at all */
    {
        char junk[160];
        FILE *f;

        snprintf(junk, sizeof(junk), "%s/junk.db", dir);
        f = fopen(junk, "w");
        fputs("this is not a database, not even close; it is text that goes on for a while "
              "so that SQLite reads a whole header of it\n",
              f);
        fclose(f);
        s = store_open(junk, err, sizeof(err));
        CHECK(s == NULL && err[0], "a file that is not a database is refused: %s", err);
        store_close(s);
        unlink(junk);
    }
    s = store_open("/nonexistent/dir/godwit.db", err, sizeof(err));
    CHECK(s == NULL && strstr(err, "/nonexistent"), "missing directory: %s", err);
}

static void test_vms(struct store *s)
{
    struct store_vm vm, got, *list;
    char longname[100];
    size_t n;

    fill_vm(&vm, "web1", "00000000-0000-0000-0000-000000000001");
    CHECK(store_vm_add(s, &vm) == 0, "add VM web1");
    CHECK(store_vm_add(s, &vm) == -EEXIST, "adding web1 again: -EEXIST");
    fill_vm(&vm, "web2", "00000000-0000-0000-0000-000000000001");
    CHECK(store_vm_add(s, &vm) == -EEXIST, "a second VM with the same uuid: -EEXIST (%s)",
          store_errmsg(s));
    fill_vm(&vm, "db1", "00000000-0000-0000-0000-000000000002");
    CHECK(store_vm_add(s, &vm) == 0, "add VM db1");

    CHECK(store_vm_get(s, "web1", &got) == 0, "get web1");
    CHECK(!strcmp(got.uuid, "00000000-0000-0000-0000-000000000001") && got.memory == 512ull << 20 &&
              got.cpus == 2 && !strcmp(got.state, "defined") && got.pid == 0 &&
              got.exit_status == -1 && got.created_ms > 0 && got.config &&
              !strcmp(got.config, "{\"memory\":\"512M\"}"),
          "web1's fields read back");
    store_vm_clear(&got);
    CHECK(store_vm_get(s, "nope", &got) == -ENOENT && got.config == NULL, "get unknown: -ENOENT");

    CHECK(store_vm_set_state(s, "web1", "running", 4242, -1) == 0, "set web1 running");
    CHECK(store_vm_get(s, "web1", &got) == 0 && !strcmp(got.state, "running") && got.pid == 4242,
          "state and pid read back");
    store_vm_clear(&got);
    CHECK(store_vm_set_state(s, "web1", "flying", 0, -1) == -EINVAL, "unknown state: -EINVAL");
    CHECK(store_vm_set_state(s, "nope", "running", 1, -1) == -ENOENT, "set state unknown VM");
    CHECK(store_vm_set_state(s, "web1", "crashed", 0, 139) == 0 &&
              store_vm_get(s, "web1", &got) == 0 && got.exit_status == 139 && got.pid == 0,
          "crashed with exit status");
    store_vm_clear(&got);

    fill_vm(&vm, "web1", "00000000-0000-0000-0000-000000000001");
    vm.cpus = 4;
    snprintf(vm.qmp_path, sizeof(vm.qmp_path), "/var/lib/godwit/vms/web1/qmp.sock");
    vm.config = NULL;
    CHECK(store_vm_put(s, &vm) == 0, "put (update) web1");
    CHECK(store_vm_get(s, "web1", &got) == 0 && got.cpus == 4 && got.config == NULL &&
              !strcmp(got.qmp_path, "/var/lib/godwit/vms/web1/qmp.sock"),
          "update read back");
    store_vm_clear(&got);
    fill_vm(&vm, "web3", "00000000-0000-0000-0000-000000000003");
    CHECK(store_vm_put(s, &vm) == 0, "put (insert) web3");

    CHECK(store_vm_list(s, &list, &n) == 0 && n == 3 && !strcmp(list[0].name, "db1") &&
              !strcmp(list[1].name, "web1") && !strcmp(list[2].name, "web3") && list[0].config,
          "list: 3 VMs by name");
    store_vm_list_free(list, n);

    CHECK(store_vm_delete(s, "web3") == 0, "delete web3");
    CHECK(store_vm_delete(s, "web3") == -ENOENT, "delete again: -ENOENT");

    /* bounds */
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    longname[STORE_NAME_MAX - 1] = 0; /* exactly 63: accepted */
    fill_vm(&vm, longname, "00000000-0000-0000-0000-000000000063");
    CHECK(store_vm_add(s, &vm) == 0, "a 63-character name is accepted");
    CHECK(store_vm_get(s, longname, &got) == 0 && strlen(got.name) == 63, "and read back");
    store_vm_clear(&got);
    CHECK(store_vm_delete(s, longname) == 0, "and deleted");
    longname[STORE_NAME_MAX - 1] = 'a';         /* 99 characters */
    memcpy(vm.name, longname, sizeof(vm.name)); /* no terminator inside the buffer */
    CHECK(store_vm_add(s, &vm) == -ENAMETOOLONG, "an unterminated name buffer is refused (%s)",
          store_errmsg(s));
    CHECK(store_vm_get(s, longname, &got) == -ENAMETOOLONG, "get with a 99-character name");
    CHECK(store_vm_delete(s, longname) == -ENAMETOOLONG, "delete with a 99-character name");
    CHECK(store_vm_get(s, "", &got) == -EINVAL, "empty name: -EINVAL");
}

static void test_peers_tokens(struct store *s)
{
    struct store_peer p = {0}, got, *list;
    int64_t now = store_now_ms();
    size_t n;
    unsigned purged = 0;

    snprintf(p.name, sizeof(p.name), "hostb");
    snprintf(p.address, sizeof(p.address), "10.0.0.2:8443");
    snprintf(p.fingerprint, sizeof(p.fingerprint), "sha256:bb");
    CHECK(store_peer_add(s, &p) == 0, "add peer hostb");
    CHECK(store_peer_add(s, &p) == -EEXIST, "add hostb again: -EEXIST");
    snprintf(p.name, sizeof(p.name), "hostc");
    CHECK(store_peer_add(s, &p) == -EEXIST, "same certificate under another name: -EEXIST");
    snprintf(p.fingerprint, sizeof(p.fingerprint), "sha256:cc");
    CHECK(store_peer_add(s, &p) == 0, "add peer hostc");
    CHECK(store_peer_get(s, "hostb", &got) == 0 && !strcmp(got.address, "10.0.0.2:8443") &&
              got.added_ms > 0,
          "get hostb");
    CHECK(store_peer_find_fingerprint(s, "sha256:cc", &got) == 0 && !strcmp(got.name, "hostc"),
          "find by fingerprint");
    CHECK(store_peer_find_fingerprint(s, "sha256:dd", &got) == -ENOENT, "unknown fingerprint");
    CHECK(store_peer_list(s, &list, &n) == 0 && n == 2 && !strcmp(list[1].name, "hostc"),
          "list peers");
    free(list);
    CHECK(store_peer_remove(s, "hostc") == 0 && store_peer_remove(s, "hostc") == -ENOENT,
          "remove peer");
    CHECK(store_peer_get(s, "hostc", &got) == -ENOENT, "removed peer is gone");

    CHECK(store_token_add(s, "t1", "hash1", now + 3600000) == 0, "add token t1");
    CHECK(store_token_add(s, "t1", "hash1", now + 3600000) == -EEXIST, "same token id: -EEXIST");
    CHECK(store_token_add(s, "t2", "hash2", now - 1) == 0, "add expired token t2");
    CHECK(store_token_consume(s, "t1", "wrong", now) == -ENOENT, "wrong secret: -ENOENT");
    CHECK(store_token_consume(s, "t1", "hash1", now) == 0, "t1 consumed once");
    CHECK(store_token_consume(s, "t1", "hash1", now) == -EALREADY, "t1 twice: -EALREADY (%s)",
          store_errmsg(s));
    CHECK(store_token_consume(s, "t2", "hash2", now) == -ETIMEDOUT, "expired: -ETIMEDOUT (%s)",
          store_errmsg(s));
    CHECK(store_token_consume(s, "t3", "hash3", now) == -ENOENT, "unknown token: -ENOENT");
    CHECK(store_token_add(s, "t4", "hash4", now + 1000) == 0 &&
              store_token_consume(s, "t4", "hash4", now + 1000) == -ETIMEDOUT,
          "a token is expired at its expiry time");
    CHECK(store_token_purge(s, now, &purged) == 0 && purged == 2, "purge used and expired (%u)",
          purged);
    CHECK(store_token_consume(s, "t4", "hash4", now) == 0, "the unexpired token stays");
}

static void test_jobs_holds(struct store *s)
{
    struct store_job j = {0}, got, *list;
    struct store_hold h = {0}, hg, *holds;
    int64_t id = 0, id2 = 0, h1 = 0, h2 = 0;
    size_t n;

    snprintf(j.kind, sizeof(j.kind), "live");
    snprintf(j.direction, sizeof(j.direction), "out");
    snprintf(j.vm, sizeof(j.vm), "web1");
    snprintf(j.peer, sizeof(j.peer), "hostb");
    snprintf(j.phase, sizeof(j.phase), "precheck");
    snprintf(j.started_by, sizeof(j.started_by), "uid:1000");
    j.options = (char *)"{\"downtime_limit_ms\":300}";
    CHECK(store_job_create(s, &j, &id) == 0 && id > 0, "create job %lld", (long long)id);
    CHECK(store_job_create(s, &j, &id2) == -EEXIST, "a second unfinished job for web1: -EEXIST");
    snprintf(j.kind, sizeof(j.kind), "warp");
    snprintf(j.vm, sizeof(j.vm), "db1");
    CHECK(store_job_create(s, &j, &id2) == -EINVAL, "unknown kind: -EINVAL");
    snprintf(j.kind, sizeof(j.kind), "cold");
    CHECK(store_job_create(s, &j, &id2) == 0 && id2 > id, "create cold job for db1");

    CHECK(store_job_get(s, id, &got) == 0 && !strcmp(got.status, "running") &&
              !strcmp(got.phase, "precheck") && !strcmp(got.started_by, "uid:1000") &&
              got.started_ms == 0 && got.options && strstr(got.options, "downtime") &&
              !got.figures && !got.error,
          "job read back");
    store_job_clear(&got);
    CHECK(store_job_set_phase(s, id, "prepare") == 0, "phase prepare");
    CHECK(store_job_set_phase(s, id, "transfer") == 0, "phase transfer");
    CHECK(store_job_set_figures(s, id, "{\"ram_sent\":4096}") == 0, "figures");
    CHECK(store_job_get(s, id, &got) == 0 && !strcmp(got.phase, "transfer") && got.started_ms > 0 &&
              got.figures && strstr(got.figures, "4096"),
          "phase, started time and figures read back");
    store_job_clear(&got);
    CHECK(store_job_set_phase(s, 999, "transfer") == -ENOENT, "phase of unknown job: -ENOENT");

    /* holds */
    h.job_id = id;
    snprintf(h.type, sizeof(h.type), "window");
    snprintf(h.reason, sizeof(h.reason), "switch over only in 01:00-02:00");
    snprintf(h.set_by, sizeof(h.set_by), "uid:1000");
    h.lift = (char *)"{\"window\":\"01:00-02:00\"}";
    CHECK(store_hold_add(s, &h, &h1) == 0, "add window hold");
    snprintf(h.type, sizeof(h.type), "compliance");
    h.lift = NULL;
    CHECK(store_hold_add(s, &h, &h2) == 0 && h2 > h1, "add compliance hold");
    snprintf(h.type, sizeof(h.type), "whim");
    CHECK(store_hold_add(s, &h, NULL) == -EINVAL, "unknown hold type: -EINVAL");
    h.job_id = 999;
    snprintf(h.type, sizeof(h.type), "manual");
    CHECK(store_hold_add(s, &h, NULL) == -ENOENT, "hold on unknown job: -ENOENT");
    CHECK(store_job_get(s, id, &got) == 0 && !strcmp(got.status, "held"), "job is held");
    store_job_clear(&got);
    CHECK(store_hold_list(s, id, true, &holds, &n) == 0 && n == 2 &&
              !strcmp(holds[0].type, "window") && holds[0].lift &&
              !strcmp(holds[1].type, "compliance") && holds[1].lifted_ms == 0,
          "two active holds listed");
    store_hold_list_free(holds, n);

    CHECK(store_hold_lift(s, h1, "window opened") == 0, "lift window hold");
    CHECK(store_hold_lift(s, h1, "again") == -EALREADY, "lift again: -EALREADY");
    CHECK(store_hold_lift(s, 999, "x") == -ENOENT, "lift unknown hold: -ENOENT");
    CHECK(store_job_get(s, id, &got) == 0 && !strcmp(got.status, "held"),
          "one hold left: still held");
    store_job_clear(&got);
    CHECK(store_hold_lift(s, h2, "uid:1001") == 0, "approve (lift compliance hold)");
    CHECK(store_job_get(s, id, &got) == 0 && !strcmp(got.status, "running") &&
              !strcmp(got.phase, "transfer"),
          "last hold lifted: running again, same phase");
    store_job_clear(&got);
    CHECK(store_hold_get(s, h2, &hg) == 0 && hg.lifted_ms > 0 &&
              !strcmp(hg.lifted_by, "uid:1001") && !strcmp(hg.set_by, "uid:1000"),
          "lifted hold records who and when");
    store_hold_clear(&hg);
    CHECK(store_hold_list(s, id, false, &holds, &n) == 0 && n == 2, "history keeps both holds");
    store_hold_list_free(holds, n);
    CHECK(store_hold_list(s, id, true, &holds, &n) == 0 && n == 0, "no active holds");
    store_hold_list_free(holds, n);

    /* a hold still active when the job ends is lifted by the end */
    h.job_id = id2;
    CHECK(store_hold_add(s, &h, &h1) == 0, "manual hold on job 2");
    CHECK(store_job_list(s, true, &list, &n) == 0 && n == 2 && list[0].id == id2 &&
              !strcmp(list[0].status, "held"),
          "active jobs, newest first");
    store_job_list_free(list, n);
    CHECK(store_job_finish(s, id2, "cancelled", "cancelled by uid:1000", NULL) == 0,
          "cancel job 2");
    CHECK(store_hold_get(s, h1, &hg) == 0 && hg.lifted_ms > 0 &&
              !strcmp(hg.lifted_by, "job finished"),
          "its hold is lifted by the end");
    store_hold_clear(&hg);
    CHECK(store_hold_add(s, &h, NULL) == -EINVAL, "no holds on a finished job");

    CHECK(store_job_finish(s, id, "running", NULL, NULL) == -EINVAL, "running is not final");
    CHECK(store_job_finish(s, id, "done", NULL, "{\"downtime_ms\":12}") == 0, "job 1 done");
    CHECK(store_job_finish(s, id, "failed", "late", NULL) == -EINVAL, "finish twice: -EINVAL");
    CHECK(store_job_set_phase(s, id, "transfer") == -EINVAL, "phase after finish: -EINVAL");
    CHECK(store_job_get(s, id, &got) == 0 && !strcmp(got.status, "done") && got.ended_ms > 0 &&
              got.figures && strstr(got.figures, "downtime_ms") && !got.error,
          "finished job read back");
    store_job_clear(&got);
    CHECK(store_job_list(s, true, &list, &n) == 0 && n == 0, "no active jobs");
    store_job_list_free(list, n);
    CHECK(store_job_list(s, false, &list, &n) == 0 && n == 2, "all jobs");
    store_job_list_free(list, n);
    /* the job's history: every change recorded with it */
    {
        static const char *const want[] = {"job-created", "job-phase",   "job-phase",
                                           "hold-set",    "hold-set",    "hold-lifted",
                                           "hold-lifted", "job-finished"};
        struct store_event *ev;
        char subject[32];
        bool same = true;

        snprintf(subject, sizeof(subject), "job/%lld", (long long)id);
        CHECK(store_event_list_subject(s, subject, 0, 100, &ev, &n) == 0 && n == 8,
              "job history has %zu events", n);
        for (size_t i = 0; i < n && i < 8; i++)
            same = same && !strcmp(ev[i].type, want[i]);
        CHECK(same, "in order: created, phases, holds set and lifted, finished");
        CHECK(n == 8 && ev[3].data && strstr(ev[3].data, "\"type\":\"window\"") &&
                  strstr(ev[6].data, "\"job_runs\":true") && strstr(ev[7].data, "\"done\""),
              "with their details (%s)", n == 8 && ev[6].data ? ev[6].data : "");
        store_event_list_free(ev, n);
        CHECK(store_event_list_subject(s, "", 0, 100, &ev, &n) == -EINVAL, "empty subject");
    }
    snprintf(j.vm, sizeof(j.vm), "web1");
    snprintf(j.kind, sizeof(j.kind), "suspended");
    CHECK(store_job_create(s, &j, &id2) == 0, "a new job for web1 once the first ended");
}

static void test_events(struct store *s)
{
    struct store_event *ev;
    int64_t id = 0, first = 0;
    unsigned deleted = 0;
    size_t n;

    int bad = 0;

    for (int i = 0; i < 20; i++) {
        char data[32];

        snprintf(data, sizeof(data), "{\"i\":%d}", i);
        bad += store_event_add(s, "job-phase", "job/1", data, &id) != 0;
        if (!first)
            first = id;
    }
    CHECK(bad == 0 && id == first + 19, "20 events added, ids increase");
    CHECK(store_event_list_since(s, first + 4, 10, &ev, &n) == 0 && n == 10 &&
              ev[0].id == first + 5 && ev[0].data && !strcmp(ev[0].data, "{\"i\":5}") &&
              !strcmp(ev[0].subject, "job/1") && ev[0].time_ms > 0,
          "list since, with a limit");
    store_event_list_free(ev, n);
    CHECK(store_event_list_since(s, 0, 1000, &ev, &n) == 0 && n >= 20, "%zu events in all", n);
    store_event_list_free(ev, n);
    CHECK(store_event_trim(s, 5, &deleted) == 0 && deleted == n - 5, "trim keeps 5 (deleted %u)",
          deleted);
    CHECK(store_event_list_since(s, 0, 100, &ev, &n) == 0 && n == 5 && ev[0].id == first + 15,
          "the newest 5 are left");
    store_event_list_free(ev, n);
    CHECK(store_event_trim(s, 5, &deleted) == 0 && deleted == 0, "trim again: nothing");
    CHECK(store_event_add(s, "vm-started", "vm/web1", NULL, &id) == 0 && id == first + 20,
          "ids are not reused after a trim");
}

static void test_two_connections(void)
{
    struct store *a = open_ok(), *b = open_ok();
    struct store_vm vm, got;
    int64_t now = store_now_ms();
    int ok = 0;

    CHECK(a && b, "two connections on one file");
    if (!a || !b)
        goto out;
    fill_vm(&vm, "shared", "00000000-0000-0000-0000-0000000000aa");
    CHECK(store_vm_add(a, &vm) == 0, "A adds a VM");
    CHECK(store_vm_get(b, "shared", &got) == 0, "B sees it");
    store_vm_clear(&got);
    CHECK(store_token_add(a, "race", "h", now + 60000) == 0, "A adds a token");
    ok += store_token_consume(a, "race", "h", now) == 0;
    ok += store_token_consume(b, "race", "h", now) == 0;
    CHECK(ok == 1, "the token is consumed by exactly one connection");
out:
    store_close(a);
    store_close(b);
}

int main(void)
{
    struct store *s;
    char cmd[128];

    snprintf(dir, sizeof(dir), "/tmp/godwit-store-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/godwit.db", dir);

    test_open();
    s = open_ok();
    CHECK(s != NULL, "open for the table tests");
    if (s) {
        test_vms(s);
        test_peers_tokens(s);
        test_jobs_holds(s);
        test_events(s);
        store_close(s);
    }
    test_two_connections();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("     could not remove %s\n", dir);
    return board_check_done();
}
