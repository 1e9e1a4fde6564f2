/*
 * The VM module's interface for other modules (src/godwitd/vms.h), on a
 * real store in a temporary state directory, without running a VM:
 * vm_define from a travelling definition (uuid, MACs, disk files kept),
 * its round trip through vm_definition, refusals that leave nothing
 * behind, vm_spawn failing cleanly (state back to defined), vm_forget,
 * vm_memory_in_use.  The processes themselves are tests/hosts/vm_test.py's.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board_check.h"
#include "godwitd/vms.h"

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
    test_forget(&d);
    vms_fini(&d);
    events_fini(&d);
    store_close(d.store);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return board_check_done();
}
