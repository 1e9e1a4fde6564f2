/*
 * What both sides of a live migration share (migrate.h): the TLS object a
 * godwit-vm is started with, the compatibility a destination checks, and
 * the migration key file that exists only while a job needs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwitd/migrate.h"
#include "godwitd/vms.h"
#include "state/state_format.h"

int migrate_tls_object(const struct godwitd *d, const char *vm, bool server, char *out, size_t len)
{
    char dir[PATH_MAX];

    if (godwitd_vm_dir(d, vm, dir, sizeof(dir)) < 0)
        return -ENAMETOOLONG;
    if (snprintf(out, len, "tls-creds-psk,id=%s,endpoint=%s,dir=%s/%s",
                 server ? MIGRATE_TLS_IN : MIGRATE_TLS_OUT, server ? "server" : "client", dir,
                 MIGRATE_TLS_DIR) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

json_t *migrate_compat(struct godwitd *d)
{
    char line[256] = "";
    char cmd[PATH_MAX + 32];
    struct stat st;
    bool known;
    FILE *f;

    /* the build of the godwit-vm this host runs: its --version line, asked
     * again only when the binary changed (a popen costs 25-40 ms) */
    known = stat(d->vm_binary, &st) == 0;
    pthread_mutex_lock(&d->vm_build.lock);
    if (known && d->vm_build.text[0] && d->vm_build.dev == st.st_dev &&
        d->vm_build.ino == st.st_ino && d->vm_build.size == st.st_size &&
        d->vm_build.mtime.tv_sec == st.st_mtim.tv_sec &&
        d->vm_build.mtime.tv_nsec == st.st_mtim.tv_nsec) {
        snprintf(line, sizeof(line), "%s", d->vm_build.text);
        pthread_mutex_unlock(&d->vm_build.lock);
        return json_pack("{s:i,s:s}", "format", STATE_FORMAT_VERSION, "vm-build", line);
    }
    pthread_mutex_unlock(&d->vm_build.lock);
    snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", d->vm_binary);
    if (!strchr(d->vm_binary, '\'') && (f = popen(cmd, "r"))) {
        if (!fgets(line, sizeof(line), f))
            line[0] = '\0';
        pclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    if (known && line[0]) {
        pthread_mutex_lock(&d->vm_build.lock);
        snprintf(d->vm_build.text, sizeof(d->vm_build.text), "%s", line);
        d->vm_build.dev = st.st_dev;
        d->vm_build.ino = st.st_ino;
        d->vm_build.size = st.st_size;
        d->vm_build.mtime = st.st_mtim;
        pthread_mutex_unlock(&d->vm_build.lock);
    }
    return json_pack("{s:i,s:s}", "format", STATE_FORMAT_VERSION, "vm-build",
                     line[0] ? line : "unknown");
}

int migrate_key_write(const struct godwitd *d, const char *vm, const char *hex, char *err,
                      size_t errlen)
{
    char dir[PATH_MAX], tdir[PATH_MAX + 8], path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    int fd;
    ssize_t n, want;
    char line[160];

    for (const char *p = hex; *p; p++)
        if (gw_hex_digit(*p) < 0)
            return gw_fail(err, errlen, -EINVAL, "the key is not hex");
    godwitd_vm_dir(d, vm, dir, sizeof(dir));
    snprintf(tdir, sizeof(tdir), "%s/%s", dir, MIGRATE_TLS_DIR);
    if (mkdir(tdir, 0700) < 0 && errno != EEXIST)
        return gw_fail(err, errlen, -errno, "%s: %s", tdir, strerror(errno));
    snprintf(path, sizeof(path), "%s/keys.psk", tdir);
    snprintf(tmp, sizeof(tmp), "%s/.keys.psk.tmp", tdir);
    want = snprintf(line, sizeof(line), "qemu:%s\n", hex);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return gw_fail(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
    n = write(fd, line, (size_t)want);
    if (n != want || fsync(fd) < 0 || close(fd) < 0) {
        unlink(tmp);
        return gw_fail(err, errlen, -EIO, "cannot write %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    }
    return 0;
}

void migrate_key_remove(const struct godwitd *d, const char *vm)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];

    if (godwitd_vm_dir(d, vm, dir, sizeof(dir)) < 0)
        return;
    snprintf(path, sizeof(path), "%s/%s/keys.psk", dir, MIGRATE_TLS_DIR);
    unlink(path);
}

/* ---- the source's job ---- */
