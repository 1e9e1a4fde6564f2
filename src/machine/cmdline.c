/*
 * godwit-vm command-line parsing; see cmdline.h.  One table row per option
 * keeps names, argument needs and help text together.
 */
#include "machine/cmdline.h"
#include "common/keyval.h"
#include "migration/mig_proto.h"
#include "state/state_format.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define GODWIT_VERSION "0.1.0"

struct cmdline_state {
    struct virt_config *cfg;
    FILE *out;
    bool nographic;
    bool serial_set;
    bool done; /* help/version printed */
    char *err;
    size_t errlen;
};

struct cmdline_opt {
    const char *name; /* without the leading dash */
    const char *arg;  /* argument name for help; NULL = flag */
    const char *help; /* NULL = hidden */
    int (*handle)(struct cmdline_state *st, const char *opt, const char *val);
};

static int cmdline_fail(struct cmdline_state *st, const char *fmt, ...) gw_printf(2, 3);

static int cmdline_fail(struct cmdline_state *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->err, st->errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int cmdline_parse_ram_size(const char *s, uint64_t *bytes)
{
    size_t n = strlen(s);

    if (n == 0)
        return -EINVAL;
    /* A bare number means MiB, as in QEMU. */
    if (isdigit((unsigned char)s[n - 1])) {
        uint64_t mib;
        char *end;
        if (!isdigit((unsigned char)s[0]))
            return -EINVAL;
        errno = 0;
        mib = strtoull(s, &end, 10);
        if (errno || *end || mib > (UINT64_MAX >> 20))
            return -EINVAL;
        *bytes = mib << 20;
        return 0;
    }
    return gw_parse_size(s, bytes);
}

static int opt_machine(struct cmdline_state *st, const char *opt, const char *val)
{
    char buf[256];
    char *save = NULL, *tok;
    bool have_type = false;

    if (!strcmp(val, "help") || !strcmp(val, "?")) {
        fprintf(st->out, "Supported machines are:\n"
                         "virt                 RISC-V VirtIO board (QEMU 7.2 compatible map)\n");
        st->done = true;
        return 0;
    }
    if (strlen(val) >= sizeof(buf))
        return cmdline_fail(st, "%s: value too long", opt);
    strcpy(buf, val);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const char *type = NULL;
        if (!have_type && !strchr(tok, '='))
            type = tok;
        else if (!strncmp(tok, "type=", 5))
            type = tok + 5;
        if (type) {
            if (strcmp(type, "virt") != 0)
                return cmdline_fail(st, "%s: unsupported machine type '%s' (only 'virt')", opt,
                                    type);
            have_type = true;
            continue;
        }
        if (!strncmp(tok, "dumpdtb=", 8) && tok[8]) {
            /* points into argv: val is argv's string, buf a copy */
            st->cfg->dumpdtb = val + (tok + 8 - buf);
            /* the copy ends the value at the next comma; argv does not */
            if (strchr(st->cfg->dumpdtb, ','))
                return cmdline_fail(st, "%s: dumpdtb must be the last property", opt);
            continue;
        }
        return cmdline_fail(st, "%s: unsupported machine property '%s'", opt, tok);
    }
    if (!have_type)
        return cmdline_fail(st, "%s: no machine type given (use -M virt)", opt);
    return 0;
}

static int opt_m(struct cmdline_state *st, const char *opt, const char *val)
{
    uint64_t bytes;
    const char *v = val;

    if (!strncmp(v, "size=", 5))
        v += 5;
    if (cmdline_parse_ram_size(v, &bytes) < 0)
        return cmdline_fail(st, "%s: invalid RAM size '%s' (e.g. 128M, 1G, or a number of MiB)",
                            opt, val);
    /*
     * QEMU takes 0 to mean the default and boots tiny sizes into a hang or
     * a ROM overlap; here both are refused up front.
     */
    if (bytes < VIRT_MIN_RAM)
        return cmdline_fail(st, "%s: RAM size '%s' is too small (at least %lluM)", opt, val,
                            VIRT_MIN_RAM >> 20);
    if (bytes > VIRT_MAX_RAM)
        return cmdline_fail(st, "%s: RAM size '%s' is too large (at most %lluG)", opt, val,
                            VIRT_MAX_RAM >> 30);
    /* QEMU rounds the RAM size up to 8 KiB. */
    st->cfg->ram_size = (bytes + 8191) & ~8191ull;
    return 0;
}

static int opt_smp(struct cmdline_state *st, const char *opt, const char *val)
{
    const char *v = val;
    unsigned long n;
    char *end;

    if (!strncmp(v, "cpus=", 5))
        v += 5;
    if (!isdigit((unsigned char)*v))
        return cmdline_fail(st, "%s: invalid CPU count '%s'", opt, val);
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno || *end)
        return cmdline_fail(st, "%s: invalid CPU count '%s' (only a number of harts is supported)",
                            opt, val);
    if (n < 1 || n > VIRT_MAX_HARTS)
        return cmdline_fail(st, "%s: CPU count %s out of range (1 to %u)", opt, v, VIRT_MAX_HARTS);
    st->cfg->smp = (unsigned)n;
    return 0;
}

static int opt_bios(struct cmdline_state *st, const char *opt, const char *val)
{
    if (!*val)
        return cmdline_fail(st, "%s: empty file name", opt);
    if (!strcmp(val, "none"))
        st->cfg->bios = NULL;
    else if (!strcmp(val, "default"))
        st->cfg->bios = VIRT_DEFAULT_BIOS;
    else
        st->cfg->bios = val;
    return 0;
}

static int opt_initrd(struct cmdline_state *st, const char *opt, const char *val)
{
    if (!*val)
        return cmdline_fail(st, "%s: empty file name", opt);
    st->cfg->initrd = val;
    return 0;
}

static int opt_append(struct cmdline_state *st, const char *opt, const char *val)
{
    (void)opt;
    st->cfg->append = val;
    return 0;
}

static int opt_kernel(struct cmdline_state *st, const char *opt, const char *val)
{
    if (!*val)
        return cmdline_fail(st, "%s: empty file name", opt);
    st->cfg->kernel = val;
    return 0;
}

static int opt_serial(struct cmdline_state *st, const char *opt, const char *val)
{
    struct chardev_spec spec;
    char why[200];

    if (chardev_parse(val, &spec, why, sizeof(why)) < 0)
        return cmdline_fail(st, "%s: %s", opt, why);
    /* The board has one UART: the first -serial is serial0, later ones
     * would be serial1.. which virt does not have. */
    if (!st->serial_set)
        st->cfg->serial = spec;
    st->serial_set = true;
    return 0;
}

static int opt_monitor(struct cmdline_state *st, const char *opt, const char *val)
{
    if (strcmp(val, "none") != 0)
        return cmdline_fail(st, "%s %s: the human monitor is not supported; use -monitor none", opt,
                            val);
    return 0;
}

static int opt_display(struct cmdline_state *st, const char *opt, const char *val)
{
    if (strcmp(val, "none") != 0)
        return cmdline_fail(st, "%s %s: there is no graphical display; use -display none", opt,
                            val);
    return 0;
}

/*
 * -cpu rv64[,prop=on|off...]: QEMU's per-extension switches are accepted
 * when they describe the hart we have (RV64GC, M/S/U, Sv39/48, PMP), so the
 * oracle's command line (which turns QEMU's extra extensions off) works.
 */
static const char *const cmdline_cpu_have[] = {
    "i", "e", "m", "a", "f", "d", "c", "s", "u", "g", "zicsr", "zifencei", "zicntr", "mmu", "pmp",
};
static const char *const cmdline_cpu_lack[] = {
    "h",           "v",      "zba",    "zbb",     "zbc",
    "zbs",         "zbkb",   "zbkc",   "zbkx",    "zfh",
    "zfhmin",      "zfinx",  "zdinx",  "zhinx",   "zhinxmin",
    "zk",          "zkn",    "zknd",   "zkne",    "zknh",
    "zkr",         "zks",    "zksed",  "zksh",    "zkt",
    "zve32f",      "zve64f", "zicbom", "zicboz",  "zicbop",
    "zihintpause", "zmmul",  "sstc",   "svinval", "svnapot",
    "svpbmt",      "debug",  "epmp",   "smaia",   "ssaia",
    "x-aia",       "x-epmp", "x-j",    "x-zfh",   "xventanacondops",
};

static bool cmdline_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, list[i]))
            return true;
    return false;
}

static int opt_cpu(struct cmdline_state *st, const char *opt, const char *val)
{
    char buf[512];
    char *save = NULL, *tok;

    if (strlen(val) >= sizeof(buf))
        return cmdline_fail(st, "%s: value too long", opt);
    strcpy(buf, val);
    tok = strtok_r(buf, ",", &save);
    if (!tok || (strcmp(tok, "rv64") != 0 && strcmp(tok, "any") != 0))
        return cmdline_fail(st, "%s: unsupported CPU model '%s' (only rv64)", opt, tok ? tok : "");
    while ((tok = strtok_r(NULL, ",", &save))) {
        char *eq = strchr(tok, '=');
        const char *v = eq ? eq + 1 : "on";
        bool on;
        if (eq)
            *eq = '\0';
        if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
            on = true;
        else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
            on = false;
        else
            return cmdline_fail(st, "%s: property '%s' needs on or off, not '%s'", opt, tok, v);
        if (cmdline_in(tok, cmdline_cpu_have, GW_ARRAY_SIZE(cmdline_cpu_have))) {
            if (!on)
                return cmdline_fail(st, "%s: '%s' cannot be turned off (the hart is RV64GC)", opt,
                                    tok);
        } else if (cmdline_in(tok, cmdline_cpu_lack, GW_ARRAY_SIZE(cmdline_cpu_lack))) {
            if (on)
                return cmdline_fail(st, "%s: extension '%s' is not supported", opt, tok);
        } else {
            return cmdline_fail(st, "%s: unknown CPU property '%s'", opt, tok);
        }
    }
    return 0;
}

static int opt_nographic(struct cmdline_state *st, const char *opt, const char *val)
{
    (void)opt;
    (void)val;
    st->nographic = true;
    return 0;
}

static int opt_no_reboot(struct cmdline_state *st, const char *opt, const char *val)
{
    (void)opt;
    (void)val;
    st->cfg->no_reboot = true;
    return 0;
}

static int opt_help(struct cmdline_state *st, const char *opt, const char *val);

static int opt_version(struct cmdline_state *st, const char *opt, const char *val)
{
    (void)opt;
    (void)val;
    fprintf(st->out, "godwit-vm version " GODWIT_VERSION
                     " (riscv64 virt machine, QEMU 7.2 command-line subset)\n");
    st->done = true;
    return 0;
}

/* -drive, -device, -netdev, -object: kept as strings, in order, for the
 * board to interpret (machine/virt_virtio.c checks them fully). */
static int cmdline_add_spec(struct cmdline_state *st, const char *opt, const char *val,
                            const char **list, unsigned *n)
{
    if (!*val)
        return cmdline_fail(st, "%s: empty value", opt);
    if (*n >= VIRT_MAX_OPTS)
        return cmdline_fail(st, "%s: at most %d of these", opt, VIRT_MAX_OPTS);
    list[(*n)++] = val;
    return 0;
}

static int opt_drive(struct cmdline_state *st, const char *opt, const char *val)
{
    return cmdline_add_spec(st, opt, val, st->cfg->drives, &st->cfg->ndrives);
}

static int opt_device(struct cmdline_state *st, const char *opt, const char *val)
{
    return cmdline_add_spec(st, opt, val, st->cfg->devices, &st->cfg->ndevices);
}

static int opt_netdev(struct cmdline_state *st, const char *opt, const char *val)
{
    return cmdline_add_spec(st, opt, val, st->cfg->netdevs, &st->cfg->nnetdevs);
}

static int opt_object(struct cmdline_state *st, const char *opt, const char *val)
{
    return cmdline_add_spec(st, opt, val, st->cfg->objects, &st->cfg->nobjects);
}

static int opt_qmp(struct cmdline_state *st, const char *opt, const char *val)
{
    if (st->cfg->qmp)
        return cmdline_fail(st, "%s: only one QMP socket is supported", opt);
    if (strncmp(val, "unix:", 5) != 0 || val[5] == '\0')
        return cmdline_fail(st, "%s %s: only unix:PATH,server=on,wait=off is supported", opt, val);
    st->cfg->qmp = val;
    return 0;
}

static int opt_incoming(struct cmdline_state *st, const char *opt, const char *val)
{
    struct mig_uri u;
    char why[200];

    if (mig_uri_parse(val, true, &u, why, sizeof(why)) < 0)
        return cmdline_fail(st, "%s: %s", opt, why);
    st->cfg->incoming = val;
    return 0;
}

/* The identity a saved state's header carries (docs/state.md). */
_Static_assert(sizeof(((struct virt_config *)0)->name) == STATE_VM_NAME_MAX + 1, "-name size");
_Static_assert(sizeof(((struct virt_config *)0)->uuid) == STATE_UUID_LEN, "-uuid size");

/* QEMU's -name [guest=]NAME[,debug-threads=on|off]: debug-threads is
 * accepted and ignored (godwit's threads keep their names); process= and
 * anything else is refused. */
static int opt_name(struct cmdline_state *st, const char *opt, const char *val)
{
    struct keyval kv;
    const char *name;
    bool dbg;
    char why[200];
    int ret = -EINVAL;

    if (keyval_parse(&kv, val, "guest", why, sizeof(why)) < 0) {
        keyval_fini(&kv);
        return cmdline_fail(st, "%s: %s", opt, why);
    }
    name = keyval_get(&kv, "guest");
    if (keyval_get_bool(&kv, "debug-threads", false, &dbg) < 0) {
        cmdline_fail(st, "%s: debug-threads must be on or off", opt);
        goto out;
    }
    if (keyval_unused(&kv)) {
        cmdline_fail(st, "%s: unsupported property '%s' (only [guest=]NAME[,debug-threads=on|off])",
                     opt, keyval_unused(&kv));
        goto out;
    }
    if (!name || !state_vm_name_valid(name)) {
        cmdline_fail(st, "%s: a VM name is 1 to %u printable ASCII characters", opt,
                     STATE_VM_NAME_MAX);
        goto out;
    }
    snprintf(st->cfg->name, sizeof(st->cfg->name), "%s", name);
    ret = 0;
out:
    keyval_fini(&kv);
    return ret;
}

static int opt_uuid(struct cmdline_state *st, const char *opt, const char *val)
{
    if (state_uuid_parse(val, st->cfg->uuid) < 0)
        return cmdline_fail(
            st, "%s: '%s' is not a UUID (e.g. 6ba7b810-9dad-11d1-80b4-00c04fd430c8)", opt, val);
    return 0;
}

static int opt_S(struct cmdline_state *st, const char *opt, const char *val)
{
    (void)opt;
    (void)val;
    st->cfg->start_paused = true;
    return 0;
}

static const struct cmdline_opt cmdline_opts[] = {
    {"M", "virt[,dumpdtb=F]", "machine type (only virt); dumpdtb: write the DTB to F, exit",
     opt_machine},
    {"machine", "virt", NULL, opt_machine},
    {"m", "SIZE", "guest RAM at 0x80000000: 128M, 1G, or MiB (default 128, at least 4)", opt_m},
    {"smp", "N", "number of harts (default 1)", opt_smp},
    {"cpu", "rv64[,ext=off..]", "CPU model (only rv64; QEMU extension switches)", opt_cpu},
    {"bios", "FILE", "firmware: default (OpenSBI fw_dynamic), a file, or none", opt_bios},
    {"kernel", "FILE", "Linux Image or ELF (with -bios none: runs in M-mode)", opt_kernel},
    {"initrd", "FILE", "initial RAM disk", opt_initrd},
    {"append", "CMDLINE", "kernel command line (/chosen/bootargs)", opt_append},
    {"nographic", NULL, "no display; serial port on stdio (Ctrl-A h: help)", opt_nographic},
    {"serial", "DEV", "serial port: stdio, file:PATH, unix:PATH,server=on,wait=off, none",
     opt_serial},
    {"monitor", "none", "human monitor (only none)", opt_monitor},
    {"display", "none", "display (only none)", opt_display},
    {"no-reboot", NULL, "exit instead of rebooting when the guest resets", opt_no_reboot},
    {"h", NULL, "show this help", opt_help},
    {"help", NULL, NULL, opt_help},
    {"version", NULL, "show the version", opt_version},
    {"drive", "file=F,format=raw,if=none,id=ID[,readonly=on][,cache=..][,file.locking=..]",
     "a raw disk image for -device virtio-blk-device,drive=ID (locked as QEMU locks it)",
     opt_drive},
    {"device", "DRIVER[,prop=..]",
     "virtio-blk-device,drive=ID | virtio-rng-device[,rng=ID] | "
     "virtio-net-device,netdev=ID[,mac=MAC] | virtio-serial-device | "
     "virtserialport,name=NAME (org.godwit.agent.0: the guest agent)",
     opt_device},
    {"netdev", "user|tap,id=ID[,..]",
     "network backend: user[,hostfwd=tcp:127.0.0.1:HPORT-:GPORT] | tap,ifname=TAP,script=no "
     "(docs/net.md)",
     opt_netdev},
    {"object", "rng-random,id=ID,filename=F",
     "a random source for virtio-rng; or "
     "tls-creds-psk,id=ID,endpoint=client|server,dir=DIR: migration keys (DIR/keys.psk)",
     opt_object},
    {"qmp", "unix:PATH,server=on,wait=off", "QMP control socket (docs/qmp.md)", opt_qmp},
    {"incoming", "file:P|tcp:H:P|unix:P|defer",
     "start from a saved state or an incoming migration (docs/state.md)", opt_incoming},
    {"S", NULL, "do not start the harts: wait for QMP cont", opt_S},
    {"name", "[guest=]NAME", "the VM's name (query-name, saved states; debug-threads= ignored)",
     opt_name},
    {"uuid", "UUID", "the VM's UUID (query-uuid, saved states)", opt_uuid},
};

static int opt_help(struct cmdline_state *st, const char *opt, const char *val)
{
    (void)opt;
    (void)val;
    fprintf(st->out,
            "usage: godwit-vm -M virt [-kernel Image -initrd FILE -append ARGS] [options]\n"
            "Runs one RISC-V RV64GC machine compatible with QEMU's virt board.\n\n");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cmdline_opts); i++) {
        const struct cmdline_opt *o = &cmdline_opts[i];
        char left[128];
        if (!o->help)
            continue;
        snprintf(left, sizeof(left), "-%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (strlen(left) <= 20)
            fprintf(st->out, "  %-20s %s\n", left, o->help);
        else /* a long synopsis gets a line of its own */
            fprintf(st->out, "  %s\n  %-20s %s\n", left, "", o->help);
    }
    fprintf(st->out, "\nThe guest ends the run through the test device at 0x100000:\n"
                     "0x5555 exits with status 0, (code<<16)|0x3333 with status code.\n");
    st->done = true;
    return 0;
}

int cmdline_parse(int argc, char **argv, struct virt_config *cfg, FILE *out, char *err,
                  size_t errlen)
{
    struct cmdline_state st = {.cfg = cfg, .out = out, .err = err, .errlen = errlen};
    int ret;

    virt_config_init(cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name;
        const struct cmdline_opt *o = NULL;

        if (a[0] != '-' || a[1] == '\0')
            return cmdline_fail(&st, "unexpected argument '%s' (disk images are not supported)", a);
        name = a + 1 + (a[1] == '-');
        for (size_t k = 0; k < GW_ARRAY_SIZE(cmdline_opts); k++) {
            if (!strcmp(name, cmdline_opts[k].name)) {
                o = &cmdline_opts[k];
                break;
            }
        }
        if (!o)
            return cmdline_fail(&st, "unknown option '%s'", a);
        if (o->arg && i + 1 >= argc)
            return cmdline_fail(&st, "%s: requires an argument", a);
        ret = o->handle(&st, a, o->arg ? argv[++i] : NULL);
        if (ret < 0)
            return ret;
        if (st.done)
            return CMDLINE_DONE;
    }
    if (!st.serial_set) {
        cfg->serial.kind = st.nographic ? CHARDEV_STDIO : CHARDEV_NONE;
        /* -nographic means QEMU's mon:stdio: the Ctrl-A escapes. */
        cfg->serial.mux = st.nographic;
    }
    if (!cfg->bios && !cfg->kernel)
        return cmdline_fail(&st, "no -kernel given: nothing to run");
    if (cfg->initrd && !cfg->kernel)
        return cmdline_fail(&st, "-initrd cannot be used without -kernel");
    if (cfg->append && !cfg->kernel)
        return cmdline_fail(&st, "-append only allowed with -kernel option");
    return CMDLINE_RUN;
}
