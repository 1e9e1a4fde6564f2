/*
 * Disk image locking as QEMU 7.2 does it; see image_lock.h.
 *
 * Only error paths look through /proc: taking and dropping locks is a few
 * fcntl calls.  The holder search reads /proc/PID/fdinfo/FD (procfs text,
 * it never touches the image's file system) and only stats the
 * descriptors whose fdinfo lists a lock on the image's inode number, so a
 * hung network mount elsewhere cannot stall it.
 */
#include "common/image_lock.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* QEMU's bdrv_perm_names, for its messages. */
static const char *const image_perm_names[IMAGE_PERM_COUNT] = {
    [IMAGE_PERM_CONSISTENT_READ] = "consistent read",
    [IMAGE_PERM_WRITE] = "write",
    [IMAGE_PERM_WRITE_UNCHANGED] = "write unchanged",
    [IMAGE_PERM_RESIZE] = "resize",
};

int image_lock_parse_mode(const char *s, enum image_lock_mode *out)
{
    if (!strcmp(s, "auto"))
        *out = IMAGE_LOCK_AUTO;
    else if (!strcmp(s, "on"))
        *out = IMAGE_LOCK_ON;
    else if (!strcmp(s, "off"))
        *out = IMAGE_LOCK_OFF;
    else
        return -EINVAL;
    return 0;
}

/* Set (F_RDLCK) or drop (F_UNLCK) len bytes at off; 0 or -errno. */
static int image_lock_set(int fd, short type, off_t off, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = off, .l_len = len};

    while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Whether another description holds a lock on byte off: 1 (its l_pid in
 * *pid: the owner for a POSIX lock, -1 for an OFD lock), 0, or -errno. */
static int image_lock_test(int fd, off_t off, pid_t *pid)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    if (fl.l_type == F_UNLCK)
        return 0;
    *pid = fl.l_pid;
    return 1;
}

void image_lock_release(int fd)
{
    (void)image_lock_set(fd, F_UNLCK, IMAGE_LOCK_PERM_BASE,
                         IMAGE_LOCK_SHARED_BASE + 100 - IMAGE_LOCK_PERM_BASE);
}

/* argv[0]'s base name, else the kernel's comm; printable characters only. */
static void image_lock_name(pid_t pid, char *name, size_t namelen)
{
    char path[64], buf[256];
    const char *base = buf;
    ssize_t n = -1;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
    }
    if (n > 0 && buf[0]) {
        buf[n] = '\0';
        if (strrchr(buf, '/'))
            base = strrchr(buf, '/') + 1;
    } else {
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
    }
    snprintf(name, namelen, "%s", *base ? base : "?");
    for (char *p = name; *p; p++)
        if (!isprint((unsigned char)*p))
            *p = '?';
}

/* Whether the fdinfo file at path lists a POSIX or OFD lock on inode ino
 * that covers byte off ("lock:\t1: OFDLCK ADVISORY READ -1 fe:00:123 100 101"). */
static bool image_lock_fdinfo_has(const char *path, unsigned long ino, off_t off)
{
    char line[256], kind[16], end[32];
    unsigned long lino;
    long long start;
    bool found = false;
    FILE *f = fopen(path, "re");

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "lock:", 5) != 0)
            continue;
        if (sscanf(line + 5, " %*d: %15s %*s %*s %*d %*x:%*x:%lu %lld %31s", kind, &lino, &start,
                   end) != 4)
            continue;
        if (strcmp(kind, "OFDLCK") != 0 && strcmp(kind, "POSIX") != 0)
            continue; /* flock() and leases do not meet fcntl locks */
        found =
            lino == ino && start <= off && (!strcmp(end, "EOF") || strtoll(end, NULL, 10) >= off);
    }
    fclose(f);
    return found;
}

/* Look through every process's descriptors for one of the file (dev, ino)
 * with a lock on byte off, other than self's descriptor fd. */
static pid_t image_lock_scan(const struct stat *st, int fd, off_t off)
{
    char path[96];
    pid_t self = getpid(), found = 0;
    struct dirent *pe, *fe;
    DIR *proc = opendir("/proc"), *fds;

    if (!proc)
        return 0;
    while (!found && (pe = readdir(proc))) {
        pid_t pid = (pid_t)atoi(pe->d_name);

        if (!isdigit((unsigned char)pe->d_name[0]) || pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
        fds = opendir(path);
        if (!fds)
            continue; /* gone, or not ours to read */
        while (!found && (fe = readdir(fds))) {
            struct stat fst;
            int n = atoi(fe->d_name);

            if (!isdigit((unsigned char)fe->d_name[0]) || (pid == self && n == fd))
                continue;
            snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, n);
            if (!image_lock_fdinfo_has(path, (unsigned long)st->st_ino, off))
                continue;
            /* the same inode number could be on another file system */
            snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, n);
            if (stat(path, &fst) == 0 && fst.st_dev == st->st_dev && fst.st_ino == st->st_ino)
                found = pid;
        }
        closedir(fds);
    }
    closedir(proc);
    return found;
}

pid_t image_lock_holder(int fd, off_t off, char *name, size_t namelen)
{
    struct stat st;
    pid_t pid = 0;

    if (image_lock_test(fd, off, &pid) <= 0)
        return 0;
    if (pid <= 0) /* an OFD lock (-1), or an owner outside our pid namespace (0) */
        pid = fstat(fd, &st) == 0 ? image_lock_scan(&st, fd, off) : 0;
    if (pid > 0)
        image_lock_name(pid, name, namelen);
    return pid;
}

/* "WHAT: process 4242 (godwit-vm) is using the image [PATH]", naming
 * whoever holds byte off if we can tell, QEMU's question if not. */
static void image_lock_conflict(int fd, off_t off, const char *what, const char *path, char *err,
                                size_t errlen)
{
    char name[64];
    pid_t pid = image_lock_holder(fd, off, name, sizeof(name));

    if (pid == getpid())
        snprintf(err, errlen, "%s: this process already uses the image [%s]", what, path);
    else if (pid > 0)
        snprintf(err, errlen, "%s: process %d (%s) is using the image [%s]", what, (int)pid, name,
                 path);
    else
        snprintf(err, errlen, "%s: is another process using the image [%s]?", what, path);
}

int image_lock_acquire(int fd, bool write, const char *path, char *err, size_t errlen)
{
    unsigned use = 1u << IMAGE_PERM_CONSISTENT_READ | (write ? 1u << IMAGE_PERM_WRITE : 0);
    unsigned deny = 1u << IMAGE_PERM_WRITE; /* as QEMU's virtio-blk with share-rw=off */
    char what[64];
    off_t byte = 0;
    pid_t pid;
    int ret = 0;

    /* Ours first (i < COUNT: the permissions we use, then those we deny),
     * then the conflicts: of two openers racing, each sees the other's. */
    for (unsigned i = 0; i < 2 * IMAGE_PERM_COUNT && !ret; i++) {
        unsigned p = i % IMAGE_PERM_COUNT;
        bool denied = i >= IMAGE_PERM_COUNT;

        if ((denied ? deny : use) >> p & 1) {
            byte = (denied ? IMAGE_LOCK_SHARED_BASE : IMAGE_LOCK_PERM_BASE) + p;
            ret = image_lock_set(fd, F_RDLCK, byte, 1);
        }
    }
    if (ret == -EAGAIN || ret == -EACCES) { /* a write lock there: not QEMU's, but a user */
        snprintf(what, sizeof(what), "Failed to lock byte %d", (int)byte);
        image_lock_conflict(fd, byte, what, path, err, errlen);
        ret = -EAGAIN;
    } else if (ret == -EINVAL || ret == -ENOLCK || ret == -EOPNOTSUPP || ret == -ENOSYS) {
        snprintf(err, errlen, "%s: the file system does not support OFD locks (%s)", path,
                 strerror(-ret));
        ret = -ENOTSUP;
    } else if (ret < 0) {
        snprintf(err, errlen, "%s: cannot lock byte %d: %s", path, (int)byte, strerror(-ret));
    }
    /* Someone denying a permission we use holds byte 200 + p; someone using
     * one we deny holds 100 + p (QEMU's raw_check_lock_bytes order). */
    for (unsigned i = 0; i < 2 * IMAGE_PERM_COUNT && !ret; i++) {
        unsigned p = i % IMAGE_PERM_COUNT;
        bool denied = i >= IMAGE_PERM_COUNT;
        int r;

        if (!((denied ? deny : use) >> p & 1))
            continue;
        byte = (denied ? IMAGE_LOCK_PERM_BASE : IMAGE_LOCK_SHARED_BASE) + p;
        r = image_lock_test(fd, byte, &pid);
        if (r > 0) {
            snprintf(what, sizeof(what), "Failed to get %s\"%s\" lock", denied ? "shared " : "",
                     image_perm_names[p]);
            image_lock_conflict(fd, byte, what, path, err, errlen);
            ret = -EAGAIN;
        } else if (r < 0) {
            snprintf(err, errlen, "%s: cannot test byte %d: %s", path, (int)byte, strerror(-r));
            ret = r;
        }
    }
    if (ret < 0)
        image_lock_release(fd);
    return ret;
}
