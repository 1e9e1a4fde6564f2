/* Unit tests for godwit-vm's QEMU-style command line and serial specs. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "board_check.h"
#include "machine/cmdline.h"

static char err[512];
static char outbuf[4096];
static struct virt_config cfg;

/* Parse a NULL-terminated list of arguments (argv[0] is added). */
static int parse(const char *first, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    FILE *out;
    int ret;

    argv[argc++] = "godwit-vm";
    va_start(ap, first);
    for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    err[0] = 0;
    memset(outbuf, 0, sizeof(outbuf));
    out = fmemopen(outbuf, sizeof(outbuf) - 1, "w");
    ret = cmdline_parse(argc, argv, &cfg, out, err, sizeof(err));
    fclose(out);
    return ret;
}

#define BASIC "-M", "virt", "-bios", "none", "-kernel", "prog.elf"

static void expect_error(int ret, const char *want, const char *what)
{
    CHECK(ret == -EINVAL && strstr(err, want) != NULL, "%s -> \"%s\"", what, err);
}

int main(void)
{
    uint64_t sz;

    CHECK(parse(BASIC, "-m", "128M", "-nographic", NULL) == CMDLINE_RUN, "the canonical line");
    CHECK(cfg.ram_size == 128ull << 20 && cfg.smp == 1 && !strcmp(cfg.kernel, "prog.elf"),
          "128 MiB, 1 hart, kernel path");
    CHECK(cfg.serial.kind == CHARDEV_STDIO, "-nographic puts serial on stdio");
    CHECK(!cfg.no_reboot, "reboot allowed by default");

    CHECK(parse("-machine", "virt", "-bios", "none", "-kernel", "k", NULL) == CMDLINE_RUN &&
              cfg.ram_size == VIRT_DEFAULT_RAM && cfg.serial.kind == CHARDEV_NONE,
          "-machine virt; default RAM; no -nographic: serial none");
    CHECK(parse("--M", "type=virt", "--bios", "none", "--kernel", "k", NULL) == CMDLINE_RUN,
          "double-dash options and type=virt");

    CHECK(parse(BASIC, "-m", "1G", NULL) == 0 && cfg.ram_size == 1ull << 30, "-m 1G");
    CHECK(parse(BASIC, "-m", "128", NULL) == 0 && cfg.ram_size == 128ull << 20, "-m 128 means MiB");
    CHECK(parse(BASIC, "-m", "size=256M", NULL) == 0 && cfg.ram_size == 256ull << 20,
          "-m size=256M");
    CHECK(parse(BASIC, "-m", "4096k", NULL) == 0 && cfg.ram_size == 4ull << 20,
          "-m 4096k, the smallest");
    CHECK(parse(BASIC, "-m", "1000", "-m", "64", NULL) == 0 && cfg.ram_size == 64ull << 20,
          "the last -m wins");
    expect_error(parse(BASIC, "-m", "0", NULL), "-m: RAM size '0' is too small (at least 4M)",
                 "-m 0 refused (QEMU: the default)");
    expect_error(parse(BASIC, "-m", "512k", NULL), "too small", "-m 512k");
    expect_error(parse(BASIC, "-m", "4095k", NULL), "too small", "-m 4095k");
    expect_error(parse(BASIC, "-m", "size=0", NULL), "too small", "-m size=0");
    CHECK(parse(BASIC, "-m", "100000", NULL) == 0 && cfg.ram_size == 100000ull << 20,
          "large -m within the limit");
    CHECK(parse(BASIC, "-m", "4097k", NULL) == 0 && cfg.ram_size == 4104ull << 10,
          "-m rounded up to 8 KiB like QEMU");
    expect_error(parse(BASIC, "-m", "12x", NULL), "-m: invalid RAM size '12x'", "-m 12x");
    expect_error(parse(BASIC, "-m", "", NULL), "-m: invalid RAM size", "-m ''");
    expect_error(parse(BASIC, "-m", "-5", NULL), "-m: invalid RAM size", "-m -5");
    expect_error(parse(BASIC, "-m", "999999999999999999999", NULL), "-m: invalid RAM size",
                 "-m overflowing");
    expect_error(parse(BASIC, "-m", "300G", NULL), "too large", "-m 300G");
    expect_error(parse(BASIC, "-m", NULL), "-m: requires an argument", "-m without value");

    CHECK(parse(BASIC, "-smp", "4", NULL) == 0 && cfg.smp == 4, "-smp 4");
    CHECK(parse(BASIC, "-smp", "cpus=2", NULL) == 0 && cfg.smp == 2, "-smp cpus=2");
    CHECK(parse(BASIC, "-smp", "512", NULL) == 0 && cfg.smp == 512, "-smp 512 (QEMU's max)");
    expect_error(parse(BASIC, "-smp", "513", NULL), "out of range", "-smp 513");
    expect_error(parse(BASIC, "-smp", "0", NULL), "out of range", "-smp 0");
    expect_error(parse(BASIC, "-smp", "2x", NULL), "-smp: invalid CPU count '2x'", "-smp 2x");
    expect_error(parse(BASIC, "-smp", "cpus=2,sockets=2", NULL), "invalid CPU count",
                 "-smp topology");

    CHECK(parse(BASIC, "-serial", "file:/tmp/x", "-nographic", NULL) == 0 &&
              cfg.serial.kind == CHARDEV_FILE && !strcmp(cfg.serial.path, "/tmp/x"),
          "-serial file:PATH wins over -nographic");
    CHECK(parse("-nographic", "-serial", "none", BASIC, NULL) == 0 &&
              cfg.serial.kind == CHARDEV_NONE,
          "-serial none with -nographic");
    CHECK(parse(BASIC, "-serial", "stdio", NULL) == 0 && cfg.serial.kind == CHARDEV_STDIO,
          "-serial stdio");
    CHECK(parse(BASIC, "-serial", "null", NULL) == 0 && cfg.serial.kind == CHARDEV_NONE,
          "-serial null");
    CHECK(parse(BASIC, "-serial", "stdio", "-serial", "file:/x", NULL) == 0 &&
              cfg.serial.kind == CHARDEV_STDIO,
          "the first -serial is serial0");
    expect_error(parse(BASIC, "-serial", "bogus", NULL), "-serial: unsupported character device",
                 "-serial bogus");
    expect_error(parse(BASIC, "-serial", "file:", NULL), "needs a path", "-serial file:");

    CHECK(parse(BASIC, "-monitor", "none", "-display", "none", "-no-reboot", "-cpu", "rv64",
                NULL) == 0 &&
              cfg.no_reboot,
          "-monitor none -display none -no-reboot -cpu rv64");
    expect_error(parse(BASIC, "-monitor", "stdio", NULL), "use -monitor none", "-monitor stdio");
    expect_error(parse(BASIC, "-display", "gtk", NULL), "use -display none", "-display gtk");
    expect_error(parse(BASIC, "-cpu", "rv32", NULL), "-cpu: unsupported CPU model 'rv32'",
                 "-cpu rv32");
    CHECK(parse(BASIC, "-cpu",
                "rv64,h=false,zba=false,zbb=false,zbc=false,zbs=false,sstc=false,debug=false",
                NULL) == 0,
          "the oracle's -cpu line (QEMU extras switched off)");
    CHECK(parse(BASIC, "-cpu", "rv64,f=on,d=true,c", NULL) == 0, "-cpu with present extensions on");
    expect_error(parse(BASIC, "-cpu", "rv64,h=true", NULL), "extension 'h' is not supported",
                 "-cpu rv64,h=true");
    expect_error(parse(BASIC, "-cpu", "rv64,d=off", NULL), "'d' cannot be turned off",
                 "-cpu rv64,d=off");
    expect_error(parse(BASIC, "-cpu", "rv64,frob=off", NULL), "unknown CPU property 'frob'",
                 "-cpu rv64,frob=off");
    expect_error(parse(BASIC, "-cpu", "rv64,zba=maybe", NULL), "needs on or off",
                 "-cpu rv64,zba=maybe");

    CHECK(parse("-M", "virt", "-bios", "fw.bin", "-kernel", "k", NULL) == CMDLINE_RUN &&
              !strcmp(cfg.bios, "fw.bin"),
          "-bios PATH");
    CHECK(parse("-M", "virt", "-kernel", "Image", "-initrd", "rd", "-append", "console=ttyS0",
                NULL) == CMDLINE_RUN &&
              !strcmp(cfg.bios, VIRT_DEFAULT_BIOS) && !strcmp(cfg.initrd, "rd") &&
              !strcmp(cfg.append, "console=ttyS0"),
          "no -bios: Debian's OpenSBI; -initrd, -append");
    CHECK(parse("-M", "virt", "-bios", "default", NULL) == CMDLINE_RUN &&
              !strcmp(cfg.bios, VIRT_DEFAULT_BIOS) && !cfg.kernel,
          "-bios default without a kernel runs the firmware alone");
    CHECK(parse(BASIC, NULL) == CMDLINE_RUN && cfg.bios == NULL, "-bios none");
    expect_error(parse("-M", "virt", "-bios", "none", NULL), "no -kernel", "no -kernel");
    expect_error(parse("-M", "virt", "-initrd", "rd", NULL), "-initrd cannot be used without",
                 "-initrd without -kernel");
    expect_error(parse("-M", "virt", "-append", "x", NULL), "-append only allowed",
                 "-append without -kernel");
    CHECK(parse(BASIC, "-M", "virt,dumpdtb=out.dtb", NULL) == CMDLINE_RUN &&
              !strcmp(cfg.dumpdtb, "out.dtb"),
          "-M virt,dumpdtb=FILE");
    CHECK(parse(BASIC, "-nographic", NULL) == CMDLINE_RUN && cfg.serial.kind == CHARDEV_STDIO &&
              cfg.serial.mux,
          "-nographic: stdio with the Ctrl-A escapes");
    CHECK(parse(BASIC, "-serial", "stdio", NULL) == CMDLINE_RUN && !cfg.serial.mux,
          "-serial stdio: no escapes");
    CHECK(parse(BASIC, "-serial", "unix:/tmp/s.sock,server=on,wait=off", NULL) == CMDLINE_RUN &&
              cfg.serial.kind == CHARDEV_UNIX && cfg.serial.server && !cfg.serial.wait &&
              cfg.serial.path_len == 11 && !strncmp(cfg.serial.path, "/tmp/s.sock", 11),
          "-serial unix:PATH,server=on,wait=off");
    CHECK(parse(BASIC, "-serial", "unix:/tmp/s.sock,server,nowait", NULL) == CMDLINE_RUN &&
              cfg.serial.server && !cfg.serial.wait,
          "-serial unix:PATH,server,nowait (old spelling)");
    expect_error(parse(BASIC, "-serial", "unix:/tmp/s,frob=on", NULL), "unsupported option",
                 "-serial unix: unknown option");
    expect_error(parse(BASIC, "-M", "sifive_u", NULL), "unsupported machine type 'sifive_u'",
                 "-M sifive_u");
    expect_error(parse(BASIC, "-M", "virt,aia=aplic", NULL), "unsupported machine property",
                 "-M virt,aia=aplic");

    expect_error(parse(BASIC, "-foo", NULL), "unknown option '-foo'", "-foo");
    CHECK(!strcmp(err, "unknown option '-foo'"), "exact unknown-option message");
    expect_error(parse(BASIC, "--bar", NULL), "unknown option '--bar'", "--bar");
    expect_error(parse(BASIC, "disk.img", NULL), "unexpected argument 'disk.img'", "bare word");
    expect_error(parse(BASIC, "-", NULL), "unexpected argument '-'", "lone dash");
    CHECK(
        parse(BASIC, "-drive", "file=a,if=none,id=d0", "-device", "virtio-blk-device,drive=d0",
              "-device", "virtio-rng-device", "-object", "rng-random,id=r", NULL) == CMDLINE_RUN &&
            cfg.ndrives == 1 && !strcmp(cfg.drives[0], "file=a,if=none,id=d0") &&
            cfg.ndevices == 2 && !strcmp(cfg.devices[1], "virtio-rng-device") && cfg.nobjects == 1,
        "-drive, -device, -object kept in order for the board");
    expect_error(parse(BASIC, "-device", "", NULL), "-device: empty value", "-device ''");
    CHECK(parse(BASIC, "-qmp", "unix:/tmp/q.sock,server=on,wait=off", "-S", NULL) == CMDLINE_RUN &&
              !strcmp(cfg.qmp, "unix:/tmp/q.sock,server=on,wait=off") && cfg.start_paused,
          "-qmp unix:.. and -S");
    expect_error(parse(BASIC, "-qmp", "tcp:1:2", NULL), "only unix:PATH", "-qmp tcp");
    expect_error(parse(BASIC, "-qmp", "unix:a", "-qmp", "unix:b", NULL), "only one QMP",
                 "two -qmp");
    CHECK(parse(BASIC, "-incoming", "file:/x/y.state", NULL) == CMDLINE_RUN &&
              !strcmp(cfg.incoming, "file:/x/y.state"),
          "-incoming file:");
    expect_error(parse(BASIC, "-incoming", "file:", NULL), "empty or too long",
                 "-incoming file:''");
    CHECK(parse(BASIC, "-incoming", "tcp:127.0.0.1:4444", NULL) == CMDLINE_RUN &&
              parse(BASIC, "-incoming", "unix:/tmp/m.sock", NULL) == CMDLINE_RUN &&
              parse(BASIC, "-incoming", "defer", NULL) == CMDLINE_RUN,
          "-incoming tcp:, unix:, defer");
    expect_error(parse(BASIC, "-incoming", "tcp:nohostport", NULL), "tcp:HOST:PORT",
                 "-incoming tcp: without port");
    expect_error(parse(BASIC, "-incoming", "exec:cat", NULL), "unsupported migration URI",
                 "-incoming exec:");
    expect_error(parse(BASIC, "-kernel", NULL), "-kernel: requires an argument",
                 "-kernel without value");

    /* the VM's identity: QEMU's -name and -uuid spellings */
    CHECK(parse(BASIC, NULL) == CMDLINE_RUN && cfg.name[0] == '\0' && cfg.uuid[0] == 0 &&
              cfg.uuid[15] == 0,
          "no -name, no -uuid: anonymous");
    CHECK(parse(BASIC, "-name", "web-1", NULL) == CMDLINE_RUN && !strcmp(cfg.name, "web-1"),
          "-name NAME");
    CHECK(parse(BASIC, "-name", "guest=db 2,debug-threads=on", NULL) == CMDLINE_RUN &&
              !strcmp(cfg.name, "db 2"),
          "-name guest=NAME,debug-threads=on (ignored)");
    CHECK(parse(BASIC, "-name", "a,,b", "-name", "last", NULL) == CMDLINE_RUN &&
              !strcmp(cfg.name, "last"),
          "the last -name wins");
    CHECK(parse(BASIC, "-name", "a,,b", NULL) == CMDLINE_RUN && !strcmp(cfg.name, "a,b"),
          "-name: ',,' is a comma");
    CHECK(parse(BASIC, "-name", "012345678901234567890123456789012345678901234567890123456789012",
                NULL) == CMDLINE_RUN &&
              strlen(cfg.name) == 63,
          "-name of 63 characters");
    expect_error(parse(BASIC, "-name",
                       "0123456789012345678901234567890123456789012345678901234567890123", NULL),
                 "1 to 63 printable", "-name of 64 characters");
    expect_error(parse(BASIC, "-name", "", NULL), "1 to 63 printable", "-name ''");
    expect_error(parse(BASIC, "-name", "tab\there", NULL), "printable", "-name with a tab");
    expect_error(parse(BASIC, "-name", "caf\xc3\xa9", NULL), "printable", "-name in UTF-8");
    expect_error(parse(BASIC, "-name", "vm,process=qemu-vm", NULL),
                 "unsupported property 'process'", "-name process= refused");
    expect_error(parse(BASIC, "-name", "vm,debug-threads=maybe", NULL), "on or off",
                 "-name debug-threads=maybe");
    expect_error(parse(BASIC, "-name", "debug-threads=on", NULL), "1 to 63",
                 "-name without a name");
    CHECK(parse(BASIC, "-uuid", "6BA7B810-9dad-11d1-80b4-00c04fd430c8", NULL) == CMDLINE_RUN &&
              cfg.uuid[0] == 0x6b && cfg.uuid[15] == 0xc8,
          "-uuid");
    expect_error(parse(BASIC, "-uuid", "6ba7b810-9dad-11d1-80b4-00c04fd430c", NULL),
                 "is not a UUID", "-uuid too short");
    expect_error(parse(BASIC, "-uuid", "6ba7b810x9dad-11d1-80b4-00c04fd430c8", NULL),
                 "is not a UUID", "-uuid without its dashes");
    expect_error(parse(BASIC, "-uuid", NULL), "-uuid: requires an argument", "-uuid without value");

    CHECK(parse("-h", NULL) == CMDLINE_DONE && strstr(outbuf, "usage: godwit-vm") &&
              strstr(outbuf, "-serial DEV"),
          "-h prints usage");
    CHECK(parse("-h", NULL) == CMDLINE_DONE &&
              strstr(outbuf, "-drive file=F,format=raw,if=none,id=ID[,readonly=on][,cache=..]"
                             "[,file.locking=..]\n"),
          "-h: a long synopsis is not cut");
    CHECK(parse("--help", NULL) == CMDLINE_DONE, "--help");
    CHECK(parse("-version", NULL) == CMDLINE_DONE && strstr(outbuf, "godwit-vm version"),
          "-version");
    CHECK(parse("-M", "help", NULL) == CMDLINE_DONE && strstr(outbuf, "virt"), "-M help");
    CHECK(parse("-foo", "-h", NULL) == -EINVAL, "errors are reported in order");

    CHECK(cmdline_parse_ram_size("64", &sz) == 0 && sz == 64ull << 20, "ram size: bare = MiB");
    CHECK(cmdline_parse_ram_size("2G", &sz) == 0 && sz == 2ull << 30, "ram size: 2G");
    CHECK(cmdline_parse_ram_size("G", &sz) < 0, "ram size: unit alone refused");
    return board_check_done();
}
