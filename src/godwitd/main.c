/*
 * godwitd: the host agent (docs/godwitd.md).  One per host: it owns the
 * host's state directory (the registry in SQLite, the host's TLS identity,
 * one folder per VM) and serves the REST API under /1.0/ on a unix socket
 * for the local operator.  It runs in the foreground, logs to stderr, and
 * SIGTERM/SIGINT stop the daemon, never the VMs it supervises.
 *
 *   godwitd [--state-dir DIR] [--socket PATH] [--name NAME]
 *
 * Built so far: the state directory, the store, the host identity and the
 * API's transport.  VMs, peers and jobs come with their resources.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "godwitd/api.h"
#include "godwitd/store.h"
#include "godwitd/trust.h"

struct godwitd {
    char state_dir[PATH_MAX];
    char socket_path[PATH_MAX];
    char name[API_NAME_MAX + 1];
    int lock_fd; /* DIR/godwitd.lock, flock'ed while the daemon runs */
    struct store *store;
    struct trust_identity *id; /* DIR/tls: the host's key and certificate */
    struct api_server *api;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: godwitd [--state-dir DIR] [--socket PATH] [--name NAME]\n"
               "\n"
               "  --state-dir DIR  the host's state (default /var/lib/godwit as root,\n"
               "                   else $XDG_STATE_HOME/godwit)\n"
               "  --socket PATH    the local API socket (default DIR/godwitd.sock, mode 0600)\n"
               "  --name NAME      this host's name for its peers (default: the host name)\n");
}

/* The default state directory: /var/lib/godwit as root, else
 * $XDG_STATE_HOME/godwit or ~/.local/state/godwit. */
static int default_state_dir(char *out, size_t len)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

    if (geteuid() == 0)
        return snprintf(out, len, "/var/lib/godwit") >= (int)len ? -ENAMETOOLONG : 0;
    if (xdg && xdg[0] == '/')
        return snprintf(out, len, "%s/godwit", xdg) >= (int)len ? -ENAMETOOLONG : 0;
    if (!home || home[0] != '/')
        return -ENOENT;
    return snprintf(out, len, "%s/.local/state/godwit", home) >= (int)len ? -ENAMETOOLONG : 0;
}

/* mkdir -p with mode for the last component (parents 0755). */
static int make_dir(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The host's name: --name, else the host name's first label, lower-cased. */
static int host_name(struct godwitd *d, const char *opt)
{
    char hn[256] = "";

    if (opt) {
        if (!api_name_valid(opt)) {
            gw_log("--name '%s': 1-63 characters of a-z, 0-9 and '-', starting with a letter", opt);
            return -EINVAL;
        }
        snprintf(d->name, sizeof(d->name), "%.*s", API_NAME_MAX, opt); /* valid: <= 63 */
        return 0;
    }
    if (gethostname(hn, sizeof(hn) - 1) < 0)
        hn[0] = '\0';
    hn[strcspn(hn, ".")] = '\0';
    for (char *p = hn; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (!api_name_valid(hn)) {
        gw_log("the host name '%s' is not a valid godwit host name: give one with --name", hn);
        return -EINVAL;
    }
    snprintf(d->name, sizeof(d->name), "%.*s", API_NAME_MAX, hn); /* valid: <= 63 */
    return 0;
}

/* One daemon per state directory: an exclusive flock on DIR/godwitd.lock,
 * which also says who holds it. */
static int lock_state_dir(struct godwitd *d)
{
    char path[PATH_MAX + 16], pid[32] = "";
    ssize_t n;

    snprintf(path, sizeof(path), "%s/godwitd.lock", d->state_dir);
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0) {
        gw_log("%s: %s", path, strerror(errno));
        return -errno;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (pid[0])
            gw_log("another godwitd (pid %s) uses %s", pid, d->state_dir);
        else
            gw_log("another godwitd uses %s", d->state_dir);
        return -EBUSY;
    }
    n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(d->lock_fd, 0) < 0 || pwrite(d->lock_fd, pid, (size_t)n, 0) != n)
        gw_log("%s: cannot record the pid: %s", path, strerror(errno));
    return 0;
}

/* GET /1.0 is built into the API server; the resources join this table. */
static const struct api_route godwitd_routes[] = {{NULL, NULL, NULL, NULL}};

static int parse_args(struct godwitd *d, int argc, char **argv, const char **name)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 'd'},
        {"socket", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': snprintf(d->state_dir, sizeof(d->state_dir), "%s", optarg); break;
        case 's': snprintf(d->socket_path, sizeof(d->socket_path), "%s", optarg); break;
        case 'n': *name = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -EINVAL;
        }
    }
    if (optind < argc) {
        gw_log("unexpected argument '%s'", argv[optind]);
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct godwitd d;
    const char *name = NULL;
    char err[512];
    sigset_t stop;
    int sig, ret;

    gw_log_set_prog("godwitd");
    memset(&d, 0, sizeof(d));
    if (parse_args(&d, argc, argv, &name) < 0)
        return 2;
    if (!d.state_dir[0] && default_state_dir(d.state_dir, sizeof(d.state_dir)) < 0) {
        gw_log("no state directory: give one with --state-dir");
        return 2;
    }
    if (host_name(&d, name) < 0)
        return 2;
    if (!d.socket_path[0] && snprintf(d.socket_path, sizeof(d.socket_path), "%s/godwitd.sock",
                                      d.state_dir) >= (int)sizeof(d.socket_path)) {
        gw_log("the state directory's path is too long");
        return 2;
    }
    ret = make_dir(d.state_dir, 0700);
    if (ret == 0) {
        char vms[PATH_MAX + 8];

        snprintf(vms, sizeof(vms), "%s/vms", d.state_dir);
        ret = make_dir(vms, 0700);
    }
    if (ret < 0) {
        gw_log("state directory %s: %s", d.state_dir, strerror(-ret));
        return 1;
    }
    if (lock_state_dir(&d) < 0)
        return 1;
    {
        char db[PATH_MAX + 16];

        snprintf(db, sizeof(db), "%s/godwit.db", d.state_dir);
        d.store = store_open(db, err, sizeof(err));
        if (!d.store) {
            gw_log("%s: %s", db, err);
            return 1;
        }
        if (store_host_set(d.store, d.name) < 0) {
            gw_log("%s: %s", db, store_errmsg(d.store));
            return 1;
        }
    }
    {
        char tls[PATH_MAX + 8];

        snprintf(tls, sizeof(tls), "%s/tls", d.state_dir);
        if (trust_identity_load_or_create(tls, d.name, &d.id, err, sizeof(err)) < 0) {
            gw_log("%s", err);
            return 1;
        }
    }
    /* stop signals are taken by sigwait below, in this thread only: block
     * them before any thread starts so none of them gets one */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    {
        struct api_config ac = {
            .socket_path = d.socket_path,
            .host_name = d.name,
            .routes = godwitd_routes,
            .nroutes = 0,
            .ctx = &d,
        };

        d.api = api_server_start(&ac, err, sizeof(err));
    }
    if (!d.api) {
        gw_log("%s", err);
        return 1;
    }
    gw_log("host %s: state in %s, API on unix:%s, certificate %s", d.name, d.state_dir,
           d.socket_path, d.id->fingerprint);
    while (sigwait(&stop, &sig) != 0)
        ;
    gw_log("%s: stopping (the VMs keep running)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    api_server_stop(d.api);
    trust_identity_free(d.id);
    store_close(d.store);
    close(d.lock_fd);
    return 0;
}
