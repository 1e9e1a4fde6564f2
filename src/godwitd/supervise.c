/*
 * Supervision of the godwit-vm processes (vms_int.h): one thread polls
 * every watched VM's console connection, its relay socket and attached
 * client, and notices processes ending.
 *
 * Console relay: godwit-vm serves its console on a unix socket that takes
 * one client at a time and drops output while none is connected.  godwitd
 * holds that one connection for as long as the VM runs (reconnecting every
 * 200 ms when it is lost), appends everything to console.log (cut to its
 * last VM_LOG_KEEP bytes once it passes VM_LOG_MAX) and serves
 * console-relay.sock (0600) where one `godwit vm console` at a time gets the
 * same output and sends its keystrokes to the VM.  A second client is told
 * the console is busy and closed.  Writes to the client never block: a
 * client that does not keep up loses output (the log keeps it).
 *
 * Ending: a child is reaped with waitpid(pid, WNOHANG); a reattached
 * process (not our child after a daemon restart) is polled with
 * kill(pid, 0), and its QMP events are read so that its SHUTDOWN event
 * (sent on every orderly exit: guest power-off, quit, SIGTERM) marks the
 * end as clean.  The exit is recorded as stopped (status 0, a SHUTDOWN, or
 * an exit we asked for) or crashed (anything else; -1 when the status is
 * unknown), the VM's TAPs are deleted and vm-stopped / vm-crashed emitted.
 * An exit asked for with another outcome (vm_suspend: "suspended") records
 * that state instead and emits nothing: the asker announces it.
 *
 * Locking: sup->lock guards the list and the flags; the thread does its
 * I/O with it held (non-blocking fds, short) but never takes the store lock
 * while holding it.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sock.h"
#include "godwitd/vms_int.h"
#include "qmp/qmp_client.h"

#define SUP_POLL_MS      200
#define SUP_RECONNECT_MS 200
#define SUP_BUF          4096
#define SUP_FDS_PER_VM   4

struct sup_vm {
    struct sup_vm *next;
    char name[STORE_NAME_MAX];
    pid_t pid;
    bool child;             /* ours: waitpid; else kill(pid, 0) */
    bool expect_exit;       /* stop/kill asked: the exit is "stopped" */
    bool forget;            /* drop the watch, leave the process */
    bool ended;             /* exit seen, being recorded */
    bool shutdown;          /* QMP SHUTDOWN seen: the process ends cleanly */
    bool clean;             /* ended: recorded as stopped, not crashed */
    struct qmp_client *qmp; /* reattached VMs: events, for a clean exit */
    int wait_status;        /* -1: unknown */
    int con_fd;             /* the VM's console.sock, -1: not connected */
    int relay_fd;           /* listening console-relay.sock */
    int client_fd;          /* the attached client, -1: none */
    int log_fd;             /* console.log, O_APPEND */
    uint64_t log_size;
    uint64_t next_connect_ns;
    struct sock_addr con_addr;
    struct sock_unix_owner relay_owner;
    char log_path[PATH_MAX];
    char taps[VM_NICS_MAX][VM_TAP_NAME];
    unsigned ntaps;

    /* vm_suspend: an exit that records another state than stopped/crashed */
    char exit_as[STORE_WORD_MAX];   /* "": none; set by sup_exit_as */
    char end_state[STORE_WORD_MAX]; /* ended: exit_as as it was then */
};

struct supervisor {
    struct godwitd *d;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a watch ended or was dropped */
    struct sup_vm *vms;
    int wake[2];
    _Atomic bool stop;
};

int vm_path(const struct godwitd *d, const char *name, const char *file, char *out, size_t len)
{
    return snprintf(out, len, "%s/vms/%s/%s", d->state_dir, name, file) >= (int)len ? -ENAMETOOLONG
                                                                                    : 0;
}

static void sup_wake(struct supervisor *s)
{
    char c = 1;

    if (write(s->wake[1], &c, 1) < 0) {
        /* the pipe is full: the thread wakes anyway */
    }
}

static struct sup_vm *sup_find(struct supervisor *s, const char *name)
{
    for (struct sup_vm *v = s->vms; v; v = v->next)
        if (!strcmp(v->name, name) && !v->forget)
            return v;
    return NULL;
}

static void sup_vm_free(struct sup_vm *v)
{
    qmp_client_free(v->qmp);
    if (v->con_fd >= 0)
        close(v->con_fd);
    if (v->client_fd >= 0)
        close(v->client_fd);
    if (v->relay_fd >= 0) {
        close(v->relay_fd);
        sock_unix_release(&v->relay_owner);
    }
    if (v->log_fd >= 0)
        close(v->log_fd);
    free(v);
}

/* ---- TAP devices ---- */

int sup_tap_create(const char *tap, const char *bridge, char *err, size_t errlen)
{
    struct ifreq ifr;
    int fd, sk, ret = 0;
    unsigned br_index;

    if (!bridge || !bridge[0] || strlen(bridge) >= IFNAMSIZ)
        return gw_fail(err, errlen, -EINVAL, "bad bridge name");
    br_index = if_nametoindex(bridge);
    if (!br_index)
        return gw_fail(err, errlen, -ENODEV, "bridge '%s' does not exist on this host", bridge);
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return gw_fail(err, errlen, -errno, "/dev/net/tun: %s", strerror(errno));
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
        ret = gw_fail(err, errlen, -errno, "TAP %s: %s", tap, strerror(errno));
        close(fd);
        return ret;
    }
    close(fd);
    sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sk < 0) {
        ret = gw_fail(err, errlen, -errno, "socket: %s", strerror(errno));
        goto out_delete;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
    ifr.ifr_ifindex = (int)if_nametoindex(tap);
    if (ioctl(sk, SIOCBRADDIF, &ifr) < 0) {
        ret = gw_fail(err, errlen, -errno, "attach TAP %s to bridge %s: %s", tap, bridge,
                      errno == EOPNOTSUPP || errno == EINVAL ? "not a bridge" : strerror(errno));
        goto out_close;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
    if (ioctl(sk, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
            ret = gw_fail(err, errlen, -errno, "TAP %s up: %s", tap, strerror(errno));
    }
out_close:
    close(sk);
out_delete:
    if (ret < 0)
        sup_tap_delete(tap);
    return ret;
}

void sup_tap_delete(const char *tap)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
    if (ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETPERSIST, 0) < 0)
        gw_log("TAP %s: cannot delete: %s", tap, strerror(errno));
    close(fd);
}

/* ---- the console log ---- */

/* Keep the log's last VM_LOG_KEEP bytes (a new file renamed over it). */
static void sup_log_cut(struct sup_vm *v)
{
    char tmp[PATH_MAX + 8];
    char *buf = malloc(VM_LOG_KEEP);
    ssize_t n;
    int fd;

    if (!buf)
        return;
    n = pread(v->log_fd, buf, VM_LOG_KEEP, (off_t)(v->log_size - VM_LOG_KEEP));
    /* start at a line when one begins near the cut */
    char *nl = n > 0 ? memchr(buf, '\n', (size_t)(n < 4096 ? n : 4096)) : NULL;
    size_t skip = nl ? (size_t)(nl - buf) + 1 : 0;
    snprintf(tmp, sizeof(tmp), "%s.new", v->log_path);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
    if (n > 0 && fd >= 0 && write(fd, buf + skip, (size_t)n - skip) == n - (ssize_t)skip &&
        rename(tmp, v->log_path) == 0) {
        close(v->log_fd);
        v->log_fd = fd;
        v->log_size = (uint64_t)n - skip;
    } else {
        /* the log stays bounded even when it cannot be cut (disk full) */
        gw_log("vm %s: %s: cannot keep its tail; emptied", v->name, v->log_path);
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        if (ftruncate(v->log_fd, 0) == 0)
            v->log_size = 0;
    }
    free(buf);
}

static void sup_log_append(struct sup_vm *v, const char *buf, size_t n)
{
    if (v->log_fd < 0)
        return;
    if (write(v->log_fd, buf, n) == (ssize_t)n)
        v->log_size += n;
    if (v->log_size > VM_LOG_MAX)
        sup_log_cut(v);
}

int vm_log_prepend(struct godwitd *d, const char *name, const char *data, size_t len, char *err,
                   size_t errlen)
{
    struct supervisor *s = d->sup;
    struct sup_vm *v;
    char tmp[PATH_MAX + 8];
    char *buf = NULL;
    ssize_t n = 0;
    int fd, ret = 0;

    pthread_mutex_lock(&s->lock);
    v = sup_find(s, name);
    if (!v || v->log_fd < 0) {
        pthread_mutex_unlock(&s->lock);
        return gw_fail(err, errlen, -ESRCH, "VM %s has no console log open", name);
    }
    /* what came before, then what this host logged; the whole stays bounded */
    if (len > VM_LOG_KEEP) {
        data += len - VM_LOG_KEEP;
        len = VM_LOG_KEEP;
    }
    buf = malloc(v->log_size ? v->log_size : 1);
    if (buf && v->log_size)
        n = pread(v->log_fd, buf, v->log_size, 0);
    snprintf(tmp, sizeof(tmp), "%s.new", v->log_path);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
    if (!buf || n < 0 || fd < 0 || write(fd, data, len) != (ssize_t)len ||
        (n > 0 && write(fd, buf, (size_t)n) != n) || rename(tmp, v->log_path) < 0) {
        ret = gw_fail(err, errlen, -EIO, "%s: cannot prepend the earlier log", v->log_path);
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    } else {
        close(v->log_fd);
        v->log_fd = fd;
        v->log_size = len + (uint64_t)n;
        if (v->log_size > VM_LOG_MAX)
            sup_log_cut(v);
    }
    pthread_mutex_unlock(&s->lock);
    free(buf);
    return ret;
}

/* ---- watches ---- */

static void sup_try_connect(struct sup_vm *v)
{
    int fd;

    if (v->con_fd >= 0 || v->ended || gw_now_ns() < v->next_connect_ns)
        return;
    fd = sock_connect(&v->con_addr, 100, SOCK_F_NONBLOCK, NULL, 0);
    if (fd < 0) {
        v->next_connect_ns = gw_now_ns() + (uint64_t)SUP_RECONNECT_MS * 1000000u;
        return;
    }
    v->con_fd = fd;
}

int sup_watch(struct godwitd *d, const char *name, pid_t pid, bool child,
              const char (*taps)[VM_TAP_NAME], unsigned ntaps, char *err, size_t errlen)
{
    struct supervisor *s = d->sup;
    struct sup_vm *v = calloc(1, sizeof(*v));
    char path[PATH_MAX];
    struct sock_addr relay;
    struct stat st;
    int ret;

    if (!v)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    v->con_fd = v->relay_fd = v->client_fd = v->log_fd = -1;
    v->wait_status = -1;
    v->pid = pid;
    v->child = child;
    snprintf(v->name, sizeof(v->name), "%s", name);
    for (unsigned i = 0; i < ntaps && i < VM_NICS_MAX; i++)
        memcpy(v->taps[v->ntaps++], taps[i], VM_TAP_NAME);
    ret = vm_path(d, name, VM_FILE_LOG, v->log_path, sizeof(v->log_path));
    if (ret < 0) {
        ret = gw_fail(err, errlen, ret, "the VM's folder path is too long");
        goto out_free;
    }
    v->log_fd = open(v->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (v->log_fd < 0) {
        ret = gw_fail(err, errlen, -errno, "%s: %s", v->log_path, strerror(errno));
        goto out_free;
    }
    if (fstat(v->log_fd, &st) == 0)
        v->log_size = (uint64_t)st.st_size;
    if (vm_path(d, name, VM_FILE_CONSOLE, path, sizeof(path)) < 0 ||
        sock_addr_unix(&v->con_addr, path, strlen(path), err, errlen) < 0) {
        ret = gw_fail(err, errlen, -ENAMETOOLONG,
                      "the console socket's path is too long for a unix socket");
        goto out_free;
    }
    if (vm_path(d, name, VM_FILE_RELAY, path, sizeof(path)) < 0 ||
        sock_addr_unix(&relay, path, strlen(path), err, errlen) < 0) {
        ret = gw_fail(err, errlen, -ENAMETOOLONG,
                      "the console relay's path is too long for a unix socket");
        goto out_free;
    }
    {
        mode_t old = umask(0177);
        ret = sock_listen(&relay, 4, &v->relay_owner, err, errlen);
        umask(old);
    }
    if (ret < 0)
        goto out_free;
    v->relay_fd = ret;
    chmod(path, 0600);
    /* the console socket is there by the time QMP answers; a few tries
     * anyway, since a VM started paused is continued once this returns */
    for (int i = 0; i < 20 && v->con_fd < 0; i++) {
        v->next_connect_ns = 0;
        sup_try_connect(v);
        if (v->con_fd < 0)
            usleep(25000);
    }
    /* a process that is not our child cannot be waited for: its SHUTDOWN
     * event tells a clean end (power-off, quit, SIGTERM) from a crash */
    if (!child && vm_qmp_path(d, name, path, sizeof(path)) == 0 &&
        qmp_client_connect(path, 1000, &v->qmp, NULL, 0) < 0)
        v->qmp = NULL;
    pthread_mutex_lock(&s->lock);
    v->next = s->vms;
    s->vms = v;
    pthread_mutex_unlock(&s->lock);
    sup_wake(s);
    return 0;
out_free:
    sup_vm_free(v);
    return ret;
}

bool sup_watching(struct godwitd *d, const char *name, pid_t *pid)
{
    struct supervisor *s = d->sup;
    struct sup_vm *v;

    pthread_mutex_lock(&s->lock);
    v = sup_find(s, name);
    if (v && pid)
        *pid = v->pid;
    pthread_mutex_unlock(&s->lock);
    return v != NULL;
}

void sup_expect_exit(struct godwitd *d, const char *name, bool on)
{
    struct supervisor *s = d->sup;
    struct sup_vm *v;

    pthread_mutex_lock(&s->lock);
    v = sup_find(s, name);
    if (v)
        v->expect_exit = on;
    pthread_mutex_unlock(&s->lock);
}

void sup_exit_as(struct godwitd *d, const char *name, const char *state)
{
    struct supervisor *s = d->sup;
    struct sup_vm *v;

    pthread_mutex_lock(&s->lock);
    v = sup_find(s, name);
    if (v)
        snprintf(v->exit_as, sizeof(v->exit_as), "%s", state ? state : "");
    pthread_mutex_unlock(&s->lock);
}

static bool sup_has_pid(struct supervisor *s, const char *name, pid_t pid)
{
    for (struct sup_vm *v = s->vms; v; v = v->next)
        if (!strcmp(v->name, name) && v->pid == pid)
            return true;
    return false;
}

int sup_wait_exit(struct godwitd *d, const char *name, pid_t pid, int timeout_ms)
{
    struct supervisor *s = d->sup;
    struct timespec ts;
    int ret = 0;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (sup_has_pid(s, name, pid)) {
        /* wake every 200 ms: a stopping daemon must not wait for a guest */
        struct timespec now, slice;
        clock_gettime(CLOCK_MONOTONIC, &now);
        slice = now;
        slice.tv_nsec += 200000000L;
        if (slice.tv_nsec >= 1000000000L) {
            slice.tv_sec++;
            slice.tv_nsec -= 1000000000L;
        }
        if (slice.tv_sec > ts.tv_sec || (slice.tv_sec == ts.tv_sec && slice.tv_nsec > ts.tv_nsec))
            slice = ts;
        if (s->d->stopping && sup_has_pid(s, name, pid)) {
            ret = -ECANCELED;
            break;
        }
        if (pthread_cond_timedwait(&s->cond, &s->lock, &slice) == ETIMEDOUT &&
            (slice.tv_sec == ts.tv_sec && slice.tv_nsec == ts.tv_nsec)) {
            ret = sup_has_pid(s, name, pid) ? -ETIMEDOUT : 0;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

void sup_forget(struct godwitd *d, const char *name)
{
    struct supervisor *s = d->sup;
    struct sup_vm *v;
    pid_t pid;

    pthread_mutex_lock(&s->lock);
    v = sup_find(s, name);
    if (!v) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    v->forget = true;
    pid = v->pid;
    pthread_mutex_unlock(&s->lock);
    sup_wake(s);
    (void)sup_wait_exit(d, name, pid, 5000);
}

/* ---- the thread ---- */

static void sup_console_in(struct sup_vm *v)
{
    char buf[SUP_BUF];
    ssize_t n = read(v->con_fd, buf, sizeof(buf));

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(v->con_fd);
        v->con_fd = -1;
        v->next_connect_ns = gw_now_ns() + (uint64_t)SUP_RECONNECT_MS * 1000000u;
        return;
    }
    if (n < 0)
        return;
    sup_log_append(v, buf, (size_t)n);
    if (v->client_fd >= 0 && send(v->client_fd, buf, (size_t)n, MSG_NOSIGNAL) < 0 &&
        errno != EAGAIN) {
        close(v->client_fd);
        v->client_fd = -1;
    }
}

static void sup_client_in(struct sup_vm *v)
{
    char buf[SUP_BUF];
    ssize_t n = read(v->client_fd, buf, sizeof(buf));

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(v->client_fd);
        v->client_fd = -1;
        return;
    }
    if (n > 0 && v->con_fd >= 0 && send(v->con_fd, buf, (size_t)n, MSG_NOSIGNAL) < 0 &&
        errno != EAGAIN) {
        close(v->con_fd);
        v->con_fd = -1;
    }
}

static void sup_relay_accept(struct sup_vm *v)
{
    static const char busy[] = "godwit: the console is in use by another client\r\n";
    int fd = sock_accept(v->relay_fd, 0, NULL, SOCK_F_NONBLOCK);

    if (fd < 0)
        return;
    if (v->client_fd >= 0) {
        if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0) {
            /* it went away already */
        }
        close(fd);
        return;
    }
    v->client_fd = fd;
}

/* Read the queued QMP events of a reattached VM; a broken connection is
 * dropped (the process is ending, or gone). */
static void sup_qmp_in(struct sup_vm *v)
{
    json_t *ev = NULL;
    int ret = -EAGAIN;

    while (v->qmp && (ret = qmp_client_event(v->qmp, 0, &ev, NULL, 0)) == 0) {
        const char *name = json_string_value(json_object_get(ev, "event"));
        if (name && !strcmp(name, "SHUTDOWN"))
            v->shutdown = true;
        json_decref(ev);
        ev = NULL;
    }
    if (v->qmp && ret != -EAGAIN) {
        qmp_client_free(v->qmp);
        v->qmp = NULL;
    }
}

/* Whether the process ended; *status the wait status (-1 unknown). */
static bool sup_reap(struct sup_vm *v, int *status)
{
    int st;

    *status = -1;
    if (v->child) {
        pid_t r = waitpid(v->pid, &st, WNOHANG);
        if (r == v->pid) {
            *status = st;
            return true;
        }
        return r < 0 && errno == ECHILD;
    }
    return kill(v->pid, 0) < 0 && errno == ESRCH;
}

/* Record an ended watch in the store and the event log. */
static void sup_record(struct supervisor *s, struct sup_vm *v)
{
    struct godwitd *d = s->d;
    bool clean = v->clean; /* decided under the lock when the end was seen */
    bool as = v->end_state[0] != '\0';
    const char *state = as ? v->end_state : clean ? "stopped" : "crashed";
    struct store_vm row;
    bool have = false;
    json_t *data;

    godwitd_store_lock(d);
    if (store_vm_get(d->store, v->name, &row) == 0) {
        have = true;
        /* only if the row still speaks of this process */
        if (row.pid == v->pid) {
            row.pid = 0;
            snprintf(row.state, sizeof(row.state), "%s", state);
            row.exit_status = v->wait_status;
            row.qmp_path[0] = row.console_path[0] = '\0';
            if (store_vm_put(d->store, &row) < 0)
                gw_log("vm %s: %s", v->name, store_errmsg(d->store));
        } else {
            have = false;
        }
        store_vm_clear(&row);
    }
    godwitd_store_unlock(d);
    for (unsigned i = 0; i < v->ntaps; i++)
        sup_tap_delete(v->taps[i]);
    if (as)
        gw_log("vm %s: process %d ended (%s, status %d)", v->name, (int)v->pid, state,
               v->wait_status);
    if (!have || as) /* an exit recorded as a state is announced by who asked for it */
        return;
    data = json_pack("{s:I,s:i}", "pid", (json_int_t)v->pid, "exit_status", v->wait_status);
    if (data && v->wait_status >= 0 && WIFEXITED(v->wait_status))
        json_object_set_new(data, "exit_code", json_integer(WEXITSTATUS(v->wait_status)));
    if (data && v->wait_status >= 0 && WIFSIGNALED(v->wait_status))
        json_object_set_new(data, "signal", json_integer(WTERMSIG(v->wait_status)));
    {
        char subject[STORE_WHO_MAX];
        snprintf(subject, sizeof(subject), "vm/%s", v->name);
        godwitd_event(d, clean ? "vm-stopped" : "vm-crashed", subject, data);
    }
    gw_log("vm %s: process %d ended (%s, status %d)", v->name, (int)v->pid, state, v->wait_status);
}

static void *sup_thread(void *arg)
{
    struct supervisor *s = arg;
    struct pollfd *fds = NULL;
    struct sup_vm **owner = NULL;
    size_t cap = 0;

    while (!s->stop) {
        size_t n = 0, count = 1;

        pthread_mutex_lock(&s->lock);
        for (struct sup_vm *v = s->vms; v; v = v->next)
            count += SUP_FDS_PER_VM;
        if (count > cap) {
            struct pollfd *f = realloc(fds, count * sizeof(*f));
            struct sup_vm **o = f ? realloc(owner, count * sizeof(*o)) : NULL;
            if (f)
                fds = f;
            if (o) {
                owner = o;
                cap = count;
            }
        }
        if (cap >= count) {
            fds[n] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
            owner[n++] = NULL;
            for (struct sup_vm *v = s->vms; v; v = v->next) {
                int vfds[SUP_FDS_PER_VM] = {v->con_fd, v->relay_fd, v->client_fd,
                                            v->qmp ? qmp_client_fd(v->qmp) : -1};
                for (unsigned i = 0; i < SUP_FDS_PER_VM; i++) {
                    if (vfds[i] < 0)
                        continue;
                    fds[n] = (struct pollfd){.fd = vfds[i], .events = POLLIN};
                    owner[n++] = v;
                }
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (poll(fds, (nfds_t)n, SUP_POLL_MS) < 0 && errno != EINTR)
            gw_log("supervisor: poll: %s", strerror(errno));
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < n; i++) {
            struct sup_vm *v = owner[i];
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (!v) {
                char buf[64];
                while (read(s->wake[0], buf, sizeof(buf)) > 0)
                    ;
                continue;
            }
            /* an fd may have been closed by an earlier entry of this round */
            if (fds[i].fd == v->con_fd)
                sup_console_in(v);
            else if (fds[i].fd == v->relay_fd)
                sup_relay_accept(v);
            else if (fds[i].fd == v->client_fd)
                sup_client_in(v);
            else if (v->qmp && fds[i].fd == qmp_client_fd(v->qmp))
                sup_qmp_in(v);
        }
        /* drop forgotten watches, find ended processes, reconnect consoles */
        for (struct sup_vm **pp = &s->vms; *pp;) {
            struct sup_vm *v = *pp;
            int status;
            if (v->forget) {
                *pp = v->next;
                sup_vm_free(v);
                pthread_cond_broadcast(&s->cond);
                continue;
            }
            if (!v->ended && sup_reap(v, &status)) {
                /* drain what the console still holds into the log */
                while (v->con_fd >= 0) {
                    struct pollfd p = {.fd = v->con_fd, .events = POLLIN};
                    if (poll(&p, 1, 0) <= 0)
                        break;
                    sup_console_in(v);
                }
                sup_qmp_in(v);   /* a SHUTDOWN still unread */
                v->ended = true; /* recorded below, then unlinked */
                v->wait_status = status;
                v->clean = v->expect_exit || status == 0 || v->shutdown;
                memcpy(v->end_state, v->exit_as, sizeof(v->end_state));
            }
            pp = &v->next;
        }
        pthread_mutex_unlock(&s->lock);
        /* record outside the lock, then unlink and wake the waiters */
        for (;;) {
            struct sup_vm *v = NULL;
            pthread_mutex_lock(&s->lock);
            for (struct sup_vm *w = s->vms; w; w = w->next)
                if (w->ended) {
                    v = w;
                    break;
                }
            pthread_mutex_unlock(&s->lock);
            if (!v)
                break;
            sup_record(s, v);
            pthread_mutex_lock(&s->lock);
            for (struct sup_vm **pp = &s->vms; *pp; pp = &(*pp)->next)
                if (*pp == v) {
                    *pp = v->next;
                    break;
                }
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
            sup_vm_free(v);
        }
        pthread_mutex_lock(&s->lock);
        for (struct sup_vm *v = s->vms; v; v = v->next)
            sup_try_connect(v);
        pthread_mutex_unlock(&s->lock);
    }
    free(fds);
    free(owner);
    return NULL;
}

int sup_init(struct godwitd *d, char *err, size_t errlen)
{
    struct supervisor *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    int ret;

    if (!s)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        ret = gw_fail(err, errlen, -errno, "pipe: %s", strerror(errno));
        free(s);
        return ret;
    }
    s->d = d;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->sup = s;
    ret = pthread_create(&s->thread, NULL, sup_thread, s);
    if (ret) {
        d->sup = NULL;
        close(s->wake[0]);
        close(s->wake[1]);
        free(s);
        return gw_fail(err, errlen, -ret, "cannot start the supervisor: %s", strerror(ret));
    }
    s->started = true;
    return 0;
}

void sup_fini(struct godwitd *d)
{
    struct supervisor *s = d->sup;

    if (!s)
        return;
    s->stop = true;
    sup_wake(s);
    if (s->started)
        pthread_join(s->thread, NULL);
    while (s->vms) {
        struct sup_vm *v = s->vms;
        s->vms = v->next;
        sup_vm_free(v); /* the VM runs on; a restarted daemon reattaches */
    }
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    d->sup = NULL;
    free(s);
}
