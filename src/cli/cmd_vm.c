/*
 * godwit vm: create, list, show, start, stop, kill, suspend, resume,
 * delete, console (docs/godwitd.md "VMs").  Every verb is one call to the daemon's
 * /1.0/vms API except the interactive console, which connects the terminal
 * to the VM's console relay socket (console-relay.sock in the VM's folder,
 * served by godwitd) until Ctrl-] is typed.
 *
 * Files named on the command line (--kernel, --initrd, --firmware PATH,
 * --disk PATH) are sent as absolute paths: the daemon on this host copies
 * the boot files into the VM's folder and references the disks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/sock.h"

#define VM_USAGE                                                                                   \
    "godwit vm create NAME --memory SIZE [--cpus N] [--firmware default|none|PATH]\n"              \
    "                 [--kernel FILE] [--initrd FILE] [--append CMDLINE] [--disk SIZE|PATH]...\n"  \
    "                 [--nic user[,hostfwd=RULE]...|bridge=BR]... [--no-agent] [--label K=V]...\n" \
    "       godwit vm list\n"                                                                      \
    "       godwit vm show NAME\n"                                                                 \
    "       godwit vm start NAME\n"                                                                \
    "       godwit vm stop NAME [--timeout S] [--force]\n"                                         \
    "       godwit vm kill NAME\n"                                                                 \
    "       godwit vm suspend NAME\n"                                                              \
    "       godwit vm resume NAME\n"                                                               \
    "       godwit vm delete NAME\n"                                                               \
    "       godwit vm console NAME [--show-log]"

#define VM_CONSOLE_ESCAPE   0x1d   /* Ctrl-] */
#define VM_CONSOLE_DRAIN_MS 1000   /* output still shown after stdin ends */
#define VM_SAVE_TIMEOUT_MS  600000 /* suspend/resume: saving or loading a big VM takes long */

enum {
    OPT_MEMORY = 0x2001,
    OPT_CPUS,
    OPT_FIRMWARE,
    OPT_KERNEL,
    OPT_INITRD,
    OPT_APPEND,
    OPT_DISK,
    OPT_NIC,
    OPT_NO_AGENT,
    OPT_LABEL,
    OPT_TIMEOUT,
    OPT_FORCE,
    OPT_SHOW_LOG,
};

static const struct option vm_opts[] = {
    CLI_COMMON_OPTS,
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"firmware", required_argument, NULL, OPT_FIRMWARE},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"append", required_argument, NULL, OPT_APPEND},
    {"disk", required_argument, NULL, OPT_DISK},
    {"nic", required_argument, NULL, OPT_NIC},
    {"no-agent", no_argument, NULL, OPT_NO_AGENT},
    {"label", required_argument, NULL, OPT_LABEL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"force", no_argument, NULL, OPT_FORCE},
    {"show-log", no_argument, NULL, OPT_SHOW_LOG},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What the options of one invocation said; which ones a verb accepts is
 * checked by the verb. */
struct vm_args {
    const char *name;
    json_t *body;  /* create */
    unsigned seen; /* bit per OPT_ - OPT_MEMORY */
    long timeout;
    bool force, show_log;
};

static int vm_abs_path(const char *what, const char *p, char *out)
{
    if (!realpath(p, out))
        return cli_usage_error(NULL, "%s '%s': %s", what, p, strerror(errno));
    return 0;
}

static int vm_opt_disk(json_t *disks, const char *arg)
{
    char path[PATH_MAX];
    uint64_t size;
    struct stat st;

    if (!strchr(arg, '/') && stat(arg, &st) < 0 && gw_parse_size(arg, &size) == 0 && size > 0) {
        json_array_append_new(disks, json_pack("{s:I}", "size", (json_int_t)size));
        return 0;
    }
    if (vm_abs_path("--disk", arg, path))
        return CLI_USAGE;
    json_array_append_new(disks, json_pack("{s:s}", "path", path));
    return 0;
}

static int vm_opt_nic(json_t *nics, const char *arg)
{
    if (!strncmp(arg, "bridge=", 7) && arg[7]) {
        json_array_append_new(nics, json_pack("{s:s,s:s}", "type", "bridge", "bridge", arg + 7));
        return 0;
    }
    if (strncmp(arg, "user", 4) || (arg[4] && arg[4] != ','))
        return cli_usage_error(VM_USAGE, "--nic '%s': user[,hostfwd=RULE]... or bridge=BR", arg);
    json_t *fwd = json_array();
    char *copy = strdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy + 4, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strncmp(tok, "hostfwd=", 8) || !tok[8]) {
            free(copy);
            json_decref(fwd);
            return cli_usage_error(VM_USAGE, "--nic '%s': unknown option '%s'", arg, tok);
        }
        json_array_append_new(fwd, json_string(tok + 8));
    }
    free(copy);
    json_t *nic = json_pack("{s:s}", "type", "user");
    if (json_array_size(fwd))
        json_object_set_new(nic, "hostfwd", fwd);
    else
        json_decref(fwd);
    json_array_append_new(nics, nic);
    return 0;
}

/* Parse argv (argv[0] the verb): options anywhere, one NAME. */
static int vm_parse(int argc, char **argv, bool want_name, struct vm_args *a)
{
    json_t *disks = json_array(), *nics = json_array();
    char path[PATH_MAX];
    int c, ret = 0;

    memset(a, 0, sizeof(*a));
    a->timeout = -1;
    a->body = json_object();
    optind = 0;
    opterr = 0;
    while (ret == 0 && (c = getopt_long(argc, argv, CLI_COMMON_SHORT "h", vm_opts, NULL)) != -1) {
        if (c >= OPT_MEMORY && c <= OPT_SHOW_LOG)
            a->seen |= 1u << (c - OPT_MEMORY);
        switch (c) {
        case OPT_MEMORY: {
            uint64_t m;
            if (gw_parse_size(optarg, &m) < 0 || m == 0)
                ret = cli_usage_error(VM_USAGE, "--memory '%s': a size such as 512M or 2G", optarg);
            else
                json_object_set_new(a->body, "memory", json_integer((json_int_t)m));
            break;
        }
        case OPT_CPUS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 4096)
                ret = cli_usage_error(VM_USAGE, "--cpus '%s': a number of CPUs", optarg);
            else
                json_object_set_new(a->body, "cpus", json_integer(n));
            break;
        }
        case OPT_FIRMWARE:
            if (!strcmp(optarg, "default") || !strcmp(optarg, "none"))
                json_object_set_new(a->body, "firmware", json_string(optarg));
            else if ((ret = vm_abs_path("--firmware", optarg, path)) == 0)
                json_object_set_new(a->body, "firmware", json_string(path));
            break;
        case OPT_KERNEL:
        case OPT_INITRD:
            if ((ret = vm_abs_path(c == OPT_KERNEL ? "--kernel" : "--initrd", optarg, path)) == 0)
                json_object_set_new(a->body, c == OPT_KERNEL ? "kernel" : "initrd",
                                    json_string(path));
            break;
        case OPT_APPEND: json_object_set_new(a->body, "append", json_string(optarg)); break;
        case OPT_DISK: ret = vm_opt_disk(disks, optarg); break;
        case OPT_LABEL: {
            const char *eq = strchr(optarg, '=');
            char key[64];
            if (!eq || eq == optarg || eq - optarg >= (long)sizeof(key)) {
                ret = cli_usage_error(VM_USAGE, "--label '%s': KEY=VALUE", optarg);
                break;
            }
            snprintf(key, sizeof(key), "%.*s", (int)(eq - optarg), optarg);
            json_t *l = json_object_get(a->body, "labels");
            if (!l) {
                l = json_object();
                json_object_set_new(a->body, "labels", l);
            }
            json_object_set_new(l, key, json_string(eq + 1));
            break;
        }
        case OPT_NIC: ret = vm_opt_nic(nics, optarg); break;
        case OPT_NO_AGENT: json_object_set_new(a->body, "agent", json_false()); break;
        case OPT_TIMEOUT: {
            char *end;
            a->timeout = strtol(optarg, &end, 10);
            if (*end || !optarg[0] || a->timeout < 0 || a->timeout > 3600)
                ret = cli_usage_error(VM_USAGE, "--timeout '%s': seconds, 0 to 3600", optarg);
            break;
        }
        case OPT_FORCE: a->force = true; break;
        case OPT_SHOW_LOG: a->show_log = true; break;
        case 'h':
            printf("usage: %s\n", VM_USAGE);
            ret = -1;
            break;
        case '?':
            ret = cli_usage_error(VM_USAGE, "unknown or incomplete option '%s'", argv[optind - 1]);
            break;
        default:
            if (!cli_common_opt(c, optarg))
                ret = cli_usage_error(VM_USAGE, "unknown option");
        }
    }
    /* GNU getopt moved the positional arguments to the end: one NAME */
    for (; ret == 0 && optind < argc; optind++) {
        if (a->name)
            ret = cli_usage_error(VM_USAGE, "unexpected argument '%s'", argv[optind]);
        else
            a->name = argv[optind];
    }
    if (ret == 0 && json_array_size(disks))
        json_object_set(a->body, "disks", disks);
    if (ret == 0 && json_array_size(nics))
        json_object_set(a->body, "nics", nics);
    json_decref(disks);
    json_decref(nics);
    if (ret == 0 && want_name && !a->name)
        ret = cli_usage_error(VM_USAGE, "'vm %s' needs a VM name", argv[0]);
    return ret;
}

/* The daemon checks names (api_name_valid); checking here too keeps a
 * name that is no URL segment out of the request line. */
static bool vm_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return false;
    return true;
}

static const char *vm_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static int vm_create(struct vm_args *a)
{
    json_t *reply = NULL;
    int ret;

    if (!json_object_get(a->body, "memory"))
        return cli_usage_error(VM_USAGE, "'vm create' needs --memory SIZE");
    json_object_set_new(a->body, "name", json_string(a->name));
    ret = cli_call("POST", "/1.0/vms", a->body, &reply, NULL);
    if (ret)
        return ret;
    if (cli_g.json)
        cli_print_json(reply);
    else
        printf("VM %s created (uuid %s)\n", a->name, vm_str(reply, "uuid"));
    json_decref(reply);
    return CLI_OK;
}

static int vm_list(void)
{
    static const char *const hdr[] = {"NAME", "STATE", "MEMORY", "CPUS", "PID", "DISKS", "NICS"};
    json_t *reply = NULL, *vms, *v;
    size_t i;
    int ret = cli_call("GET", "/1.0/vms", NULL, &reply, NULL);

    if (ret)
        return ret;
    vms = json_object_get(reply, "vms");
    if (cli_g.json) {
        cli_print_json(vms ? vms : json_array());
        json_decref(reply);
        return CLI_OK;
    }
    struct cli_table *t = cli_table_new(GW_ARRAY_SIZE(hdr), hdr);
    json_array_foreach(vms, i, v)
    {
        char mem[32], cpus[16], pid[24], disks[16], nics[16];
        json_int_t p = json_integer_value(json_object_get(v, "pid"));
        cli_fmt_bytes(mem, sizeof(mem), (double)json_integer_value(json_object_get(v, "memory")));
        snprintf(cpus, sizeof(cpus), "%lld",
                 (long long)json_integer_value(json_object_get(v, "cpus")));
        snprintf(pid, sizeof(pid), p > 0 ? "%lld" : "-", (long long)p);
        snprintf(disks, sizeof(disks), "%zu", json_array_size(json_object_get(v, "disks")));
        snprintf(nics, sizeof(nics), "%zu", json_array_size(json_object_get(v, "nics")));
        const char *row[] = {vm_str(v, "name"), vm_str(v, "state"), mem, cpus, pid, disks, nics};
        cli_table_row(t, row);
    }
    cli_table_print(t);
    json_decref(reply);
    return CLI_OK;
}

static void vm_show_human(const json_t *v)
{
    static const char *const hdr[] = {"FIELD", "VALUE"};
    struct cli_table *t = cli_table_new(2, hdr);
    char buf[256];
    json_int_t pid = json_integer_value(json_object_get(v, "pid"));
    json_int_t st = json_integer_value(json_object_get(v, "exit_status"));
    size_t i;
    json_t *x;

#define ROW(k, val)                                                                                \
    do {                                                                                           \
        const char *r_[] = {k, val};                                                               \
        cli_table_row(t, r_);                                                                      \
    } while (0)
    ROW("name", vm_str(v, "name"));
    ROW("uuid", vm_str(v, "uuid"));
    ROW("host", vm_str(v, "host"));
    ROW("state", vm_str(v, "state"));
    snprintf(buf, sizeof(buf), pid > 0 ? "%lld" : "-", (long long)pid);
    ROW("pid", buf);
    ROW("memory",
        cli_fmt_bytes(buf, sizeof(buf), (double)json_integer_value(json_object_get(v, "memory"))));
    snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(json_object_get(v, "cpus")));
    ROW("cpus", buf);
    ROW("firmware", vm_str(v, "firmware"));
    ROW("kernel", vm_str(v, "kernel"));
    ROW("initrd", vm_str(v, "initrd"));
    ROW("append", vm_str(v, "append"));
    ROW("agent", json_is_true(json_object_get(v, "agent")) ? "yes" : "no");
    json_array_foreach(json_object_get(v, "disks"), i, x)
    {
        char k[32], size[32], alloc[32];
        snprintf(k, sizeof(k), "disk%zu", i);
        cli_fmt_bytes(size, sizeof(size), (double)json_integer_value(json_object_get(x, "size")));
        cli_fmt_bytes(alloc, sizeof(alloc),
                      (double)json_integer_value(json_object_get(x, "allocated")));
        snprintf(buf, sizeof(buf), "%s (%s, %s allocated)", vm_str(x, "path"), size, alloc);
        ROW(k, buf);
    }
    json_array_foreach(json_object_get(v, "nics"), i, x)
    {
        char k[32];
        snprintf(k, sizeof(k), "nic%zu", i);
        if (json_object_get(x, "bridge"))
            snprintf(buf, sizeof(buf), "%s bridge %s (tap %s)", vm_str(x, "mac"),
                     vm_str(x, "bridge"), vm_str(x, "tap"));
        else
            snprintf(buf, sizeof(buf), "%s user (%zu host forwards)", vm_str(x, "mac"),
                     json_array_size(json_object_get(x, "hostfwd")));
        ROW(k, buf);
    }
    ROW("console", vm_str(v, "console_socket"));
    ROW("console log", vm_str(v, "console_log"));
    if (st >= 0) {
        if (json_object_get(v, "exit_signal"))
            snprintf(buf, sizeof(buf), "killed by signal %lld",
                     (long long)json_integer_value(json_object_get(v, "exit_signal")));
        else
            snprintf(buf, sizeof(buf), "exit code %lld",
                     (long long)json_integer_value(json_object_get(v, "exit_code")));
        ROW("last exit", buf);
    } else if (!strcmp(vm_str(v, "state"), "crashed")) {
        ROW("last exit", "unknown");
    }
    x = json_object_get(v, "suspended");
    if (x) {
        char size[32], when[64];
        cli_fmt_bytes(size, sizeof(size), (double)json_integer_value(json_object_get(x, "size")));
        cli_fmt_time_ms(when, sizeof(when),
                        (long long)json_integer_value(json_object_get(x, "saved")));
        snprintf(buf, sizeof(buf), "%s (%s, saved %s)", vm_str(x, "file"), size, when);
        ROW("saved state", buf);
    }
    ROW("created", cli_fmt_time_ms(buf, sizeof(buf),
                                   (long long)json_integer_value(json_object_get(v, "created"))));
#undef ROW
    cli_table_print(t);
}

static int vm_show(const char *name)
{
    char path[256];
    json_t *reply = NULL;
    int ret;

    snprintf(path, sizeof(path), "/1.0/vms/%s", name);
    ret = cli_call("GET", path, NULL, &reply, NULL);
    if (ret)
        return ret;
    if (cli_g.json)
        cli_print_json(reply);
    else
        vm_show_human(reply);
    json_decref(reply);
    return CLI_OK;
}

/* start, stop, kill, suspend, resume: POST /1.0/vms/NAME/VERB. */
static int vm_action(const char *verb, struct vm_args *a)
{
    char path[256];
    json_t *reply = NULL, *body = NULL;
    long timeout_ms = 0;
    int ret;

    snprintf(path, sizeof(path), "/1.0/vms/%s/%s", a->name, verb);
    if (!strcmp(verb, "stop")) {
        body = json_object();
        if (a->timeout >= 0)
            json_object_set_new(body, "timeout", json_integer(a->timeout));
        if (a->force)
            json_object_set_new(body, "force", json_true());
        /* the daemon waits up to the timeout, then maybe kills */
        timeout_ms = ((a->timeout >= 0 ? a->timeout : 60) + 30) * 1000L;
    } else if (strcmp(verb, "kill")) {
        timeout_ms = VM_SAVE_TIMEOUT_MS; /* start may resume a suspended VM */
    }
    ret = timeout_ms ? cli_call_timeout("POST", path, body, &reply, NULL, timeout_ms)
                     : cli_call("POST", path, body, &reply, NULL);
    json_decref(body);
    if (ret)
        return ret;
    if (cli_g.json) {
        cli_print_json(reply);
    } else if (json_is_true(json_object_get(reply, "resumed"))) {
        /* resume, or start of a suspended VM */
        printf("VM %s resumed (pid %lld); %s\n", a->name,
               (long long)json_integer_value(json_object_get(reply, "pid")),
               vm_str(reply, "clock"));
    } else if (!strcmp(verb, "start")) {
        printf("VM %s started (pid %lld)\n", a->name,
               (long long)json_integer_value(json_object_get(reply, "pid")));
    } else if (!strcmp(verb, "suspend")) {
        char size[32];
        cli_fmt_bytes(size, sizeof(size),
                      (double)json_integer_value(
                          json_object_get(json_object_get(reply, "suspended"), "size")));
        printf("VM %s suspended (%s saved)\n", a->name, size);
    } else if (a->force && json_is_true(json_object_get(reply, "discarded"))) {
        printf("VM %s stopped (its saved state was discarded)\n", a->name);
    } else {
        printf("VM %s %s\n", a->name, !strcmp(verb, "kill") ? "killed" : vm_str(reply, "state"));
    }
    json_decref(reply);
    return CLI_OK;
}

static int vm_delete(const char *name)
{
    char path[256];
    json_t *reply = NULL;
    int ret;

    snprintf(path, sizeof(path), "/1.0/vms/%s", name);
    ret = cli_call("DELETE", path, NULL, &reply, NULL);
    if (ret)
        return ret;
    if (cli_g.json)
        cli_print_json(reply);
    else
        printf("VM %s deleted\n", name);
    json_decref(reply);
    return CLI_OK;
}

static int vm_console_log(const char *name)
{
    char path[256];
    json_t *reply = NULL;
    int ret;

    snprintf(path, sizeof(path), "/1.0/vms/%s/console-log", name);
    ret = cli_call("GET", path, NULL, &reply, NULL);
    if (ret)
        return ret;
    if (cli_g.json) {
        cli_print_json(reply);
    } else {
        const char *log = json_string_value(json_object_get(reply, "log"));
        size_t n = json_string_length(json_object_get(reply, "log"));
        if (log && n)
            fwrite(log, 1, n, stdout);
    }
    json_decref(reply);
    return CLI_OK;
}

static bool vm_write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

/* Interactive: the terminal (raw) <-> the relay socket, until Ctrl-]. */
static int vm_console(const char *name)
{
    char path[256], err[256], buf[4096];
    json_t *reply = NULL;
    struct sock_addr addr;
    struct termios saved, raw;
    static const char busy[] = "godwit: the console is in use";
    bool tty = isatty(0), detached = false, first = true, busy_seen = false, in_open = true;
    uint64_t drain = 0;
    int fd, ret;

    snprintf(path, sizeof(path), "/1.0/vms/%s", name);
    ret = cli_call("GET", path, NULL, &reply, NULL);
    if (ret)
        return ret;
    const char *sockp = json_string_value(json_object_get(reply, "console_socket"));
    if (strcmp(vm_str(reply, "state"), "running")) {
        ret = cli_error("VM %s is %s: its console is there only while it runs (--show-log "
                        "prints what it wrote)",
                        name, vm_str(reply, "state"));
        json_decref(reply);
        return ret;
    }
    if (!sockp || sock_addr_unix(&addr, sockp, strlen(sockp), err, sizeof(err)) < 0) {
        json_decref(reply);
        return cli_error("VM %s: no console socket", name);
    }
    fd = sock_connect(&addr, 5000, 0, err, sizeof(err));
    json_decref(reply);
    if (fd < 0)
        return cli_error("VM %s: console: %s", name, err);
    if (tty) {
        tcgetattr(0, &saved);
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(0, TCSANOW, &raw);
        fprintf(stderr, "Connected to VM %s's console; Ctrl-] detaches.\r\n", name);
    }
    for (;;) {
        /* after the end of stdin (a script's input), output is still
         * relayed for VM_CONSOLE_DRAIN_MS, then the command ends */
        struct pollfd p[2] = {{.fd = in_open ? 0 : -1, .events = POLLIN},
                              {.fd = fd, .events = POLLIN}};
        int left = in_open ? -1 : gw_deadline_left_ms(drain);
        if (!in_open && left == 0)
            break;
        int r = poll(p, 2, left);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (first && n > 0 && (size_t)n >= sizeof(busy) - 1 &&
                !memcmp(buf, busy, sizeof(busy) - 1)) {
                busy_seen = true;
                break;
            }
            first = false;
            if (n <= 0 || !vm_write_all(1, buf, (size_t)n))
                break;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n <= 0) {
                in_open = false;
                drain = gw_deadline_ns(VM_CONSOLE_DRAIN_MS);
                continue;
            }
            char *esc = memchr(buf, VM_CONSOLE_ESCAPE, (size_t)n);
            if (esc) {
                n = esc - buf;
                detached = true;
            }
            if (n > 0 && !vm_write_all(fd, buf, (size_t)n))
                break;
            if (detached)
                break;
        }
    }
    close(fd);
    if (tty)
        tcsetattr(0, TCSANOW, &saved);
    if (busy_seen)
        return cli_error("VM %s: the console is in use by another client", name);
    if (tty)
        fprintf(stderr, "\r\n%s from VM %s's console.\n", detached ? "Detached" : "Disconnected",
                name);
    return CLI_OK;
}

int cli_cmd_vm(int argc, char **argv)
{
    static const struct {
        const char *verb;
        unsigned allowed; /* bits of the OPT_ options */
    } verbs[] = {
        {"create", (1u << (OPT_LABEL - OPT_MEMORY + 1)) - 1},
        {"list", 0},
        {"show", 0},
        {"start", 0},
        {"stop", (1u << (OPT_TIMEOUT - OPT_MEMORY)) | (1u << (OPT_FORCE - OPT_MEMORY))},
        {"kill", 0},
        {"suspend", 0},
        {"resume", 0},
        {"delete", 0},
        {"console", 1u << (OPT_SHOW_LOG - OPT_MEMORY)},
    };
    struct vm_args a;
    const char *verb;
    size_t i;
    int ret;

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: %s\n", VM_USAGE);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    verb = argv[1];
    for (i = 0; i < GW_ARRAY_SIZE(verbs); i++)
        if (!strcmp(verbs[i].verb, verb))
            break;
    if (i == GW_ARRAY_SIZE(verbs))
        return cli_usage_error(VM_USAGE, "unknown verb 'vm %s'", verb);
    ret = vm_parse(argc - 1, argv + 1, strcmp(verb, "list") != 0, &a);
    if (ret < 0) {
        json_decref(a.body);
        return CLI_OK; /* --help */
    }
    if (ret) {
        json_decref(a.body);
        return ret;
    }
    if (a.seen & ~verbs[i].allowed) {
        unsigned bad = a.seen & ~verbs[i].allowed;
        const char *opt = "?";
        for (const struct option *o = vm_opts; o->name; o++)
            if (o->val >= OPT_MEMORY && o->val <= OPT_SHOW_LOG &&
                (bad & (1u << (o->val - OPT_MEMORY)))) {
                opt = o->name;
                break;
            }
        json_decref(a.body);
        return cli_usage_error(VM_USAGE, "'vm %s' takes no --%s", verb, opt);
    }
    if (!strcmp(verb, "list") && a.name) {
        json_decref(a.body);
        return cli_usage_error(VM_USAGE, "unexpected argument '%s'", a.name);
    }
    if (a.name && !vm_name_ok(a.name)) {
        json_decref(a.body);
        return cli_error("invalid VM name '%s': 1-63 characters of a-z, 0-9 and '-', starting "
                         "with a letter",
                         a.name);
    }
    if (!strcmp(verb, "create"))
        ret = vm_create(&a);
    else if (!strcmp(verb, "list"))
        ret = vm_list();
    else if (!strcmp(verb, "show"))
        ret = vm_show(a.name);
    else if (!strcmp(verb, "delete"))
        ret = vm_delete(a.name);
    else if (!strcmp(verb, "console"))
        ret = a.show_log ? vm_console_log(a.name) : vm_console(a.name);
    else
        ret = vm_action(verb, &a);
    json_decref(a.body);
    return ret;
}
