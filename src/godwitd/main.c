/*
 * godwitd: the host agent (docs/godwitd.md).  One per host: it owns the
 * host's state directory (the registry in SQLite, the host's TLS identity,
 * one folder per VM) and serves the REST API under /1.0/ on a unix socket
 * for the local operator.  It runs in the foreground, logs to stderr, and
 * SIGTERM/SIGINT stop the daemon, never the VMs it supervises.
 *
 *   godwitd [--state-dir DIR] [--socket PATH] [--listen HOST:PORT] [--name NAME]
 *           [--shared-storage DIR]... [--memory-budget SIZE] [--vm-binary PATH]
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
#include "godwitd/godwitd.h"
#include "godwitd/migrate_int.h"
#include "godwitd/peers.h"
#include "godwitd/vms.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: godwitd [--state-dir DIR] [--socket PATH] [--listen HOST:PORT] [--name NAME]\n"
            "               [--shared-storage DIR]... [--memory-budget SIZE] [--vm-binary PATH]\n"
            "               [--max-migrations OUT[,IN]] [--label KEY=VALUE]...\n"
            "\n"
            "  --state-dir DIR       the host's state (default /var/lib/godwit as root,\n"
            "                        else $XDG_STATE_HOME/godwit)\n"
            "  --socket PATH         the local API socket (default DIR/godwitd.sock, mode 0600)\n"
            "  --listen HOST:PORT    serve trusted peers over HTTPS (mutual TLS) there\n"
            "  --name NAME           this host's name for its peers (default: the host name)\n"
            "  --shared-storage DIR  a directory every peer sees at the same path (repeatable):\n"
            "                        disks in it need not move when a VM does\n"
            "  --memory-budget SIZE  guest memory all VMs together may use (default: the\n"
            "                        host's RAM)\n"
            "  --max-migrations OUT[,IN]  migrations this host runs at once, outgoing and\n"
            "                        incoming (default 2,2); more wait on a resources hold\n"
            "  --label KEY=VALUE     a label of this host, for migration policies\n"
            "                        (STATE/policy.json; repeatable)\n"
            "  --vm-binary PATH      the godwit-vm to run (default: beside godwitd, else\n"
            "                        $GODWIT_VM, else godwit-vm in PATH)\n");
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

/* GET /1.0 is built into the API server; the modules' routes join here. */
static struct api_route *godwitd_routes(size_t *n)
{
    const struct {
        const struct api_route *r;
        size_t n;
    } mods[] = {
        {events_routes, events_nroutes},
        {vms_routes, vms_nroutes},
        {peers_routes, peers_nroutes},
        {jobs_routes, jobs_nroutes},
        {migrate_routes, migrate_nroutes},
        {migrate_in_routes, migrate_in_nroutes},
        {migrate_in_cold_routes, migrate_in_cold_nroutes},
    };
    size_t total = 0;
    struct api_route *all;

    for (size_t i = 0; i < GW_ARRAY_SIZE(mods); i++)
        total += mods[i].n;
    all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        return NULL;
    *n = 0;
    for (size_t i = 0; i < GW_ARRAY_SIZE(mods); i++)
        for (size_t j = 0; j < mods[i].n; j++)
            all[(*n)++] = mods[i].r[j];
    return all;
}

/* The godwit-vm to run: --vm-binary, else beside this godwitd, else
 * $GODWIT_VM, else "godwit-vm" (PATH). */
static void find_vm_binary(struct godwitd *d)
{
    char self[PATH_MAX];
    const char *env = getenv("GODWIT_VM");
    ssize_t n;

    if (d->vm_binary[0])
        return;
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash && (size_t)(slash - self) + sizeof("/godwit-vm") <= sizeof(d->vm_binary)) {
            snprintf(d->vm_binary, sizeof(d->vm_binary), "%.*s/godwit-vm", (int)(slash - self),
                     self);
            if (access(d->vm_binary, X_OK) == 0)
                return;
        }
    }
    snprintf(d->vm_binary, sizeof(d->vm_binary), "%s", env && env[0] ? env : "godwit-vm");
}

static const struct {
    const char *name;
    int (*init)(struct godwitd *d, char *err, size_t errlen);
    void (*fini)(struct godwitd *d);
} godwitd_modules[] = {
    {"events", events_init, events_fini},    {"vms", vms_init, vms_fini},
    {"peers", peers_init, peers_fini},       {"jobs", jobs_init, jobs_fini},
    {"migrate", migrate_init, migrate_fini},
};

static int parse_args(struct godwitd *d, int argc, char **argv, const char **name)
{
    char err[256];
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 'd'},
        {"socket", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"listen", required_argument, NULL, 'l'},
        {"shared-storage", required_argument, NULL, 'S'},
        {"memory-budget", required_argument, NULL, 'm'},
        {"max-migrations", required_argument, NULL, 'M'},
        {"label", required_argument, NULL, 'L'},
        {"vm-binary", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': snprintf(d->state_dir, sizeof(d->state_dir), "%s", optarg); break;
        case 's': snprintf(d->socket_path, sizeof(d->socket_path), "%s", optarg); break;
        case 'n': *name = optarg; break;
        case 'l':
            if (trust_address_check(optarg, err, sizeof(err)) < 0) {
                gw_log("--listen '%s': %s", optarg, err);
                return -EINVAL;
            }
            snprintf(d->listen, sizeof(d->listen), "%s", optarg);
            break;
        case 'S': {
            char *rp = realpath(optarg, NULL);
            struct stat st;
            if (!rp || stat(rp, &st) < 0 || !S_ISDIR(st.st_mode)) {
                gw_log("--shared-storage '%s': not a directory", optarg);
                free(rp);
                return -EINVAL;
            }
            if (d->nshared >= GODWITD_SHARED_MAX) {
                gw_log("--shared-storage: at most %d directories", GODWITD_SHARED_MAX);
                free(rp);
                return -EINVAL;
            }
            d->shared[d->nshared++] = rp;
            break;
        }
        case 'm':
            if (gw_parse_size(optarg, &d->memory_budget) < 0 || d->memory_budget == 0) {
                gw_log("--memory-budget '%s': a size such as 4G", optarg);
                return -EINVAL;
            }
            break;
        case 'M': {
            char *end;
            unsigned long o = strtoul(optarg, &end, 10), i = o;
            if (*end == ',')
                i = strtoul(end + 1, &end, 10);
            if (*end || o < 1 || o > 64 || i < 1 || i > 64) {
                gw_log("--max-migrations '%s': OUT[,IN], each 1 to 64", optarg);
                return -EINVAL;
            }
            d->max_out = (unsigned)o;
            d->max_in = (unsigned)i;
            break;
        }
        case 'L': {
            char key[64];
            const char *eq = strchr(optarg, '=');
            if (!eq || eq - optarg >= (long)sizeof(key) || json_object_size(d->labels) >= 16) {
                gw_log("--label '%s': KEY=VALUE (at most 16)", optarg);
                return -EINVAL;
            }
            snprintf(key, sizeof(key), "%.*s", (int)(eq - optarg), optarg);
            if (!vm_label_word_ok(key) || !vm_label_word_ok(eq + 1)) {
                gw_log("--label '%s': keys and values are 1-63 of a-z A-Z 0-9 . _ -", optarg);
                return -EINVAL;
            }
            json_object_set_new(d->labels, key, json_string(eq + 1));
            break;
        }
        case 'v': snprintf(d->vm_binary, sizeof(d->vm_binary), "%s", optarg); break;
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
    static struct godwitd d; /* threads outlive main's frame only in theory; keep it static */
    const char *name = NULL;
    char err[512];
    sigset_t stop;
    int sig, ret;
    size_t nroutes = 0, nmods = 0;
    struct api_route *routes;

    gw_log_set_prog("godwitd");
    memset(&d, 0, sizeof(d));
    pthread_mutex_init(&d.store_lock, NULL);
    pthread_mutex_init(&d.vm_build.lock, NULL);
    d.max_out = d.max_in = 2;
    d.labels = json_object();
    if (parse_args(&d, argc, argv, &name) < 0)
        return 2;
    if (!d.state_dir[0] && default_state_dir(d.state_dir, sizeof(d.state_dir)) < 0) {
        gw_log("no state directory: give one with --state-dir");
        return 2;
    }
    if (host_name(&d, name) < 0)
        return 2;
    find_vm_binary(&d);
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
    for (; nmods < GW_ARRAY_SIZE(godwitd_modules); nmods++) {
        if (godwitd_modules[nmods].init(&d, err, sizeof(err)) < 0) {
            gw_log("%s: %s", godwitd_modules[nmods].name, err);
            break;
        }
    }
    routes = nmods == GW_ARRAY_SIZE(godwitd_modules) ? godwitd_routes(&nroutes) : NULL;
    if (routes) {
        struct api_config ac = {
            .socket_path = d.socket_path,
            .host_name = d.name,
            .routes = routes,
            .nroutes = nroutes,
            .ctx = &d,
            .listen = d.listen,
            .id = d.id,
            .peer_lookup = peers_lookup_fingerprint,
        };

        d.api = api_server_start(&ac, err, sizeof(err));
        if (!d.api)
            gw_log("%s", err);
    }
    if (!d.api) {
        d.stopping = true;
        while (nmods > 0)
            godwitd_modules[--nmods].fini(&d);
        return 1;
    }
    gw_log("host %s: state in %s, API on unix:%s, certificate %s", d.name, d.state_dir,
           d.socket_path, d.id->fingerprint);
    while (sigwait(&stop, &sig) != 0)
        ;
    gw_log("%s: stopping (the VMs keep running)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    d.stopping = true;
    events_notify(&d);
    api_server_stop(d.api);
    while (nmods > 0)
        godwitd_modules[--nmods].fini(&d);
    free(routes);
    for (unsigned i = 0; i < d.nshared; i++)
        free(d.shared[i]);
    trust_identity_free(d.id);
    store_close(d.store);
    close(d.lock_fd);
    return 0;
}
