/*
 * The VM module's interface for other modules (src/godwitd/vms.h), on a
 * real store in a temporary state directory, without running a VM:
 * vm_define from a travelling definition (uuid, MACs, disk files kept),
 * its round trip through vm_definition, refusals that leave nothing
 * behind, vm_spawn failing cleanly (state back to defined), vm_forget,
 * vm_memory_in_use; suspend and resume refusals (wrong state, missing or
 * unloadable state file: the VM stays suspended with its file), a
 * suspended VM refused by a plain start, discarded by stop --force, kept by
 * a restart, and a save interrupted by a restart recorded suspended.  The processes themselves are
 * tests/hosts/vm_test.py's.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board_check.h"
#include "godwitd/vms_int.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static bool exists(const struct godwitd *d, const char *rel)
{
    char p[PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s/vms/%s", d->state_dir, rel);
    return access(p, F_OK) == 0;
}

static const char *travel_def =
    "{\"name\": \"mig1\", \"uuid\": \"0b5e1c2d-3f4a-4b6c-8d7e-9f0011223344\","
    " \"memory\": 67108864, \"cpus\": 2, \"firmware\": \"none\", \"kernel\": \"kernel\","
    " \"initrd\": null, \"append\": null,"
    " \"disks\": [{\"file\": \"disk0.raw\", \"size\": 4096}],"
    " \"nics\": [{\"type\": \"user\", \"mac\": \"52:54:00:12:34:56\", \"hostfwd\": []}],"
    " \"agent\": false, \"created\": 1234}";

static void test_define(struct godwitd *d)
{
    char err[256];
    json_t *def = json_loads(travel_def, 0, NULL), *got, *copy;
    struct store_vm row;
    struct stat st;
    int ret;

    ret = vm_define(d, def, err, sizeof(err));
    CHECK(ret == 0, "vm_define a travelling definition: %s", ret ? err : "ok");
    got = vm_definition(d, "mig1");
    CHECK(got && !strcmp(json_string_value(json_object_get(got, "uuid")),
                         "0b5e1c2d-3f4a-4b6c-8d7e-9f0011223344"),
          "the uuid travelled");
    CHECK(!strcmp(json_string_value(
                      json_object_get(json_array_get(json_object_get(got, "nics"), 0), "mac"))
                      ?: "",
                  "52:54:00:12:34:56"),
          "the MAC travelled");
    CHECK(json_integer_value(json_object_get(got, "created")) == 1234, "created kept");
    CHECK(exists(d, "mig1/disk0.raw") && exists(d, "mig1/vm.json"), "disk0.raw and vm.json made");
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/vms/mig1/vm.json", d->state_dir);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "vm.json 0600");
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, "mig1", &row);
    godwitd_store_unlock(d);
    CHECK(ret == 0 && !strcmp(row.state, "defined") && row.memory == 64u << 20 && row.cpus == 2,
          "row: state %s", ret ? "-" : row.state);
    store_vm_clear(&row);

    ret = vm_define(d, def, err, sizeof(err));
    CHECK(ret == -EEXIST, "a second define of the name: %d %s", ret, err);

    /* round trip under another name */
    copy = json_deep_copy(got);
    json_object_set_new(copy, "name", json_string("mig2"));
    json_object_set_new(copy, "uuid", json_string("0b5e1c2d-3f4a-4b6c-8d7e-9f0011223355"));
    ret = vm_define(d, copy, err, sizeof(err));
    CHECK(ret == 0, "vm_define from vm_definition: %s", ret ? err : "ok");
    json_decref(copy);

    /* refusals leave nothing behind */
    static const char *const bad[][2] = {
        {"uuid", "\"not-a-uuid\""},
        {"name", "\"Bad\""},
        {"memory", "12"},
        {"nics", "[{\"type\": \"user\", \"mac\": \"53:00:00:00:00:01\"}]"},
        {"disks", "[{\"file\": \"other.raw\", \"size\": 4096}]"},
        {"kernel", "\"/nonexistent/kernel\""},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        json_t *b = json_deep_copy(def);
        json_object_set_new(b, "name", json_string("bad1"));
        json_object_set_new(b, bad[i][0], json_loads(bad[i][1], JSON_DECODE_ANY, NULL));
        ret = vm_define(d, b, err, sizeof(err));
        CHECK(ret == -EINVAL && !exists(d, "bad1"), "bad %s refused: %s", bad[i][0], err);
        json_decref(b);
    }
    json_decref(got);
    json_decref(def);
}

static void test_spawn_fails(struct godwitd *d)
{
    char err[256];
    struct store_vm row;
    int ret;

    ret = vm_spawn(d, "mig1", NULL, "running", err, sizeof(err));
    CHECK(ret < 0 && strstr(err, "cannot run"), "spawn without a godwit-vm: %s", err);
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, "mig1", &row);
    godwitd_store_unlock(d);
    CHECK(ret == 0 && !strcmp(row.state, "defined") && row.pid == 0, "state back to defined: %s",
          row.state);
    store_vm_clear(&row);
    ret = vm_spawn(d, "nope", NULL, "running", err, sizeof(err));
    CHECK(ret == -ENOENT, "spawn of an unknown VM: %d", ret);
    CHECK(vm_memory_in_use(d) == 0, "no memory in use");
    ret = vm_kill(d, "mig1", 100, err, sizeof(err));
    CHECK(ret == -ESRCH, "kill without a process: %d", ret);
}

static void test_forget(struct godwitd *d)
{
    char err[256];
    struct store_vm row;
    int ret;

    ret = vm_forget(d, "mig2", err, sizeof(err));
    CHECK(ret == 0 && !exists(d, "mig2"), "vm_forget removes the folder");
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, "mig2", &row);
    godwitd_store_unlock(d);
    CHECK(ret == -ENOENT, "vm_forget removes the row");
    CHECK(vm_definition(d, "mig2") == NULL, "no definition after forget");
}

static void set_state(struct godwitd *d, const char *name, const char *state, int64_t pid)
{
    godwitd_store_lock(d);
    CHECK(store_vm_set_state(d->store, name, state, pid, -1) == 0, "set %s %s", name, state);
    godwitd_store_unlock(d);
}

static bool state_is(struct godwitd *d, const char *name, const char *state)
{
    struct store_vm row;
    bool ok;

    if (vm_row(d, name, &row) < 0)
        return false;
    ok = !strcmp(row.state, state) && row.pid == 0;
    store_vm_clear(&row);
    return ok;
}

static void test_suspend(struct godwitd *d)
{
    char err[512], note[128] = "x", path[PATH_MAX + 64];
    uint64_t size = 0;
    int64_t saved = 0;
    FILE *f;
    int ret;

    ret = vm_suspend(d, "nope", err, sizeof(err));
    CHECK(ret == -ENOENT, "suspend of an unknown VM: %d", ret);
    ret = vm_suspend(d, "mig1", err, sizeof(err));
    CHECK(ret == -EBUSY && strstr(err, "not running"), "suspend of a defined VM: %d %s", ret, err);
    ret = vm_resume(d, "nope", note, sizeof(note), err, sizeof(err));
    CHECK(ret == -ENOENT, "resume of an unknown VM: %d", ret);
    ret = vm_resume(d, "mig1", note, sizeof(note), err, sizeof(err));
    CHECK(ret == -EBUSY && strstr(err, "not suspended") && note[0] == '\0',
          "resume of a defined VM: %d %s", ret, err);

    /* suspended without its file: resume says so, nothing changes */
    set_state(d, "mig1", "suspended", 0);
    ret = vm_resume(d, "mig1", NULL, 0, err, sizeof(err));
    CHECK(ret == -EIO && strstr(err, "missing"), "resume without a state file: %d %s", ret, err);
    CHECK(state_is(d, "mig1", "suspended"), "still suspended");

    /* a state file the checker refuses before any godwit-vm starts */
    snprintf(path, sizeof(path), "%s/vms/mig1/%s", d->state_dir, VM_FILE_STATE);
    f = fopen(path, "w");
    CHECK(f != NULL, "write %s", path);
    if (f) {
        fputs("not a state", f);
        fclose(f);
    }
    ret = vm_resume(d, "mig1", note, sizeof(note), err, sizeof(err));
    CHECK(ret == -EIO && strstr(err, "not valid") && strstr(err, "stays suspended"),
          "resume of a damaged state: refused by the checker: %d %s", ret, err);
    CHECK(state_is(d, "mig1", "suspended") && exists(d, "mig1/" VM_FILE_STATE),
          "after a failed load: still suspended, its file kept");
    CHECK(vm_state_info(d, "mig1", &size, &saved) == 0 && size == 11 && saved > 0,
          "vm_state_info: %llu bytes, saved %lld", (unsigned long long)size, (long long)saved);
    CHECK(vm_memory_in_use(d) == 0, "a suspended VM uses no memory");

    /* a plain start refuses a suspended VM (it would lose its state) */
    ret = vm_spawn(d, "mig1", NULL, "running", err, sizeof(err));
    CHECK(ret == -EBUSY && strstr(err, "suspended"), "plain start of a suspended VM: %d %s", ret,
          err);

    /* a restart keeps it suspended */
    vms_fini(d);
    err[0] = '\0';
    CHECK(vms_init(d, err, sizeof(err)) == 0, "vms_init again%s", err);
    CHECK(state_is(d, "mig1", "suspended"), "suspended after a restart");

    /* stop --force: the saved state is discarded */
    ret = vm_suspend_discard(d, "mig1", err, sizeof(err));
    CHECK(ret == 0 && state_is(d, "mig1", "stopped") && !exists(d, "mig1/" VM_FILE_STATE),
          "discard: %d %s", ret, err);
    ret = vm_suspend_discard(d, "mig1", err, sizeof(err));
    CHECK(ret == -EBUSY, "discard of a stopped VM: %d", ret);

    /* the daemon went away after the state was saved, before the process
     * ended was recorded: stopping, no process, the file -> suspended */
    f = fopen(path, "w");
    if (f)
        fclose(f);
    set_state(d, "mig1", "stopping", 999999999);
    vms_fini(d);
    err[0] = '\0';
    CHECK(vms_init(d, err, sizeof(err)) == 0, "vms_init again%s", err);
    CHECK(state_is(d, "mig1", "suspended"), "an interrupted suspend is recorded suspended");
    CHECK(vm_suspend_discard(d, "mig1", err, sizeof(err)) == 0, "discard");
}

int main(void)
{
    static struct godwitd d;
    char dir[] = "/tmp/godwit-test-vms-XXXXXX", path[PATH_MAX], err[256];

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    pthread_mutex_init(&d.store_lock, NULL);
    snprintf(d.state_dir, sizeof(d.state_dir), "%s", dir);
    snprintf(d.name, sizeof(d.name), "hosta");
    snprintf(d.vm_binary, sizeof(d.vm_binary), "%s/no-such-godwit-vm", dir);
    snprintf(path, sizeof(path), "%s/vms", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/godwit.db", dir);
    d.store = store_open(path, err, sizeof(err));
    CHECK(d.store != NULL, "store_open: %s", d.store ? "ok" : err);
    if (!d.store)
        return board_check_done();
    CHECK(store_host_set(d.store, d.name) == 0, "store_host_set");
    CHECK(events_init(&d, err, sizeof(err)) == 0, "events_init");
    CHECK(vms_init(&d, err, sizeof(err)) == 0, "vms_init: %s", err);
    test_define(&d);
    test_spawn_fails(&d);
    test_suspend(&d);
    test_forget(&d);
    vms_fini(&d);
    events_fini(&d);
    store_close(d.store);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return board_check_done();
}
