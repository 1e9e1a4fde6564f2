/*
 * Board-level tests: tiny hand-assembled RV64 programs run on the whole
 * virt machine (RAM, reset ROM, bus, UART, CLINT, test finisher, run loop)
 * with the serial port going to a temporary file.  Covers serial output,
 * exit codes, reset (ELF reloaded, other RAM kept), -no-reboot, WFI sleep
 * until a timer deadline, fatal guest errors, two harts round-robin, and a
 * hart woken from WFI not running ahead of the hart that woke it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "board_check.h"
#include "machine/virt.h"

enum { ZERO = 0, RA = 1, T0 = 5, T1 = 6, T2 = 7, A0 = 10 };

static uint32_t code[256];
static unsigned ncode;

static void emit(uint32_t insn)
{
    code[ncode++] = insn;
}

static void lui(unsigned rd, uint32_t imm20)
{
    emit(imm20 << 12 | rd << 7 | 0x37);
}

/* auipc at index 0 (pc 0x80000000): rd = 0x80000000 + (imm20 << 12). */
static void auipc(unsigned rd, uint32_t imm20)
{
    emit(imm20 << 12 | rd << 7 | 0x17);
}

static void itype(unsigned op, unsigned f3, unsigned rd, unsigned rs1, int32_t imm)
{
    emit((uint32_t)(imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op);
}

static void addi(unsigned rd, unsigned rs1, int32_t imm)
{
    itype(0x13, 0, rd, rs1, imm);
}

static void stype(unsigned f3, unsigned rs2, unsigned rs1, int32_t imm)
{
    uint32_t u = (uint32_t)imm;
    emit((u >> 5 & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | 0x23);
}

/* Branch to instruction index target from the current position. */
static void branch(unsigned f3, unsigned rs1, unsigned rs2, unsigned target)
{
    uint32_t off = (uint32_t)((int32_t)target - (int32_t)ncode) * 4;
    emit((off >> 12 & 1) << 31 | (off >> 5 & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
         (off >> 1 & 0xf) << 8 | (off >> 11 & 1) << 7 | 0x63);
}

static void jump(unsigned target)
{
    uint32_t off = (uint32_t)((int32_t)target - (int32_t)ncode) * 4;
    emit((off >> 20 & 1) << 31 | (off >> 1 & 0x3ff) << 21 | (off >> 11 & 1) << 20 |
         (off >> 12 & 0xff) << 12 | 0x6f);
}

/* t0 = UART, then print one character. */
static void putc_t1(char c)
{
    lui(T0, 0x10000);
    addi(T1, ZERO, c);
    stype(0, T1, T0, 0);
}

/* Write (code << 16) | 0x3333 (or 0x5555 / 0x7777) to the test finisher. */
static void finisher(uint32_t value)
{
    lui(T0, 0x100);
    lui(T1, (value + 0x800) >> 12);
    addi(T1, T1, (int32_t)(value & 0xfff) - ((value & 0x800) ? 0x1000 : 0));
    stype(2, T1, T0, 0);
    jump(ncode); /* spin */
}

static char elf_path[64], ser_path[64];

/* Write code[] as an ELF at 0x80000000 and run it; returns the exit status
 * and leaves the serial output in out. */
static int run(unsigned smp, bool no_reboot, char *out, size_t outlen)
{
    uint8_t img[64 + 56 + sizeof(code)];
    struct virt_config cfg;
    struct virt *vm;
    char err[512];
    FILE *f;
    size_t n;
    int status;

    memset(img, 0, sizeof(img));
    memcpy(img, "\177ELF\2\1\1", 7);
    img[16] = 2;   /* ET_EXEC */
    img[18] = 243; /* EM_RISCV */
    img[20] = 1;
    memcpy(img + 24, &(uint64_t){0x80000000}, 8);
    img[32] = 64; /* phoff */
    img[54] = 56;
    img[56] = 1;
    img[64] = 1;                               /* PT_LOAD */
    memcpy(img + 64 + 8, &(uint64_t){120}, 8); /* offset */
    memcpy(img + 64 + 16, &(uint64_t){0x80000000}, 8);
    memcpy(img + 64 + 24, &(uint64_t){0x80000000}, 8);
    memcpy(img + 64 + 32, &(uint64_t){ncode * 4}, 8);
    memcpy(img + 64 + 40, &(uint64_t){ncode * 4}, 8);
    memcpy(img + 120, code, ncode * 4);
    f = fopen(elf_path, "wb");
    if (!f || fwrite(img, 1, 120 + ncode * 4, f) != 120 + ncode * 4 || fclose(f) != 0)
        return -100;

    virt_config_init(&cfg);
    cfg.bios = NULL; /* -bios none: the program runs in M-mode */
    cfg.kernel = elf_path;
    cfg.smp = smp;
    cfg.no_reboot = no_reboot;
    cfg.serial.kind = CHARDEV_FILE;
    cfg.serial.path = ser_path;
    vm = virt_new(&cfg, err, sizeof(err));
    if (!vm) {
        printf("     virt_new: %s\n", err);
        return -101;
    }
    status = virt_run(vm);
    virt_free(vm);
    f = fopen(ser_path, "rb");
    n = f ? fread(out, 1, outlen - 1, f) : 0;
    out[n] = 0;
    if (f)
        fclose(f);
    ncode = 0;
    return status;
}

int main(void)
{
    char out[256];
    int status;
    uint64_t t0;

    snprintf(elf_path, sizeof(elf_path), "/tmp/godwit-test-virt-%d.elf", (int)getpid());
    snprintf(ser_path, sizeof(ser_path), "/tmp/godwit-test-virt-%d.out", (int)getpid());

    /* Print and fail with code 7. */
    putc_t1('H');
    putc_t1('i');
    putc_t1('\n');
    finisher(7u << 16 | 0x3333);
    status = run(1, false, out, sizeof(out));
    CHECK(status == 7 && !strcmp(out, "Hi\n"), "serial output and exit status 7 (got %d, '%s')",
          status, out);

    /* The ROM left a0 = hartid (0), a2 = 0x1028 and jumped to RAM base. */
    addi(T2, 12, -0x28); /* t2 = a2 - 0x28 = 0x1000 */
    lui(T1, 0x1);
    branch(1, T2, T1, 6); /* bne t2, t1 -> fail */
    branch(1, A0, ZERO, 6);
    finisher(0x5555);
    /* index 6: fail */
    finisher(1u << 16 | 0x3333);
    status = run(1, false, out, sizeof(out));
    CHECK(status == 0, "registers at entry: a0 = 0, a2 = 0x1028 (status %d)", status);

    /* Reset: first boot marks RAM outside the ELF and resets; the second
     * boot sees the mark (RAM kept) and a pristine ELF (reloaded). */
    auipc(T0, 0x100);          /* 0: t0 = 0x80100000 (not in the ELF) */
    itype(0x03, 2, T2, T0, 0); /* 1: lw t2, 0(t0) */
    branch(1, T2, ZERO, 9);    /* 2: bne t2, zero -> second boot */
    addi(T1, ZERO, 1);         /* 3 */
    stype(2, T1, T0, 0);       /* 4: mark */
    putc_t1('1');              /* 5-7 */
    jump(12);                  /* 8: -> reset */
    putc_t1('2');              /* 9-11 */
    /* 12: on the first boot reset, on the second power off */
    branch(1, T2, ZERO, 19); /* 12 */
    lui(T0, 0x100);          /* 13 */
    lui(T1, 0x7);            /* 14 */
    addi(T1, T1, 0x777);     /* 15 */
    stype(2, T1, T0, 0);     /* 16: reset */
    jump(17);                /* 17 */
    jump(17);                /* 18 */
    finisher(0x5555);        /* 19.. */
    status = run(1, false, out, sizeof(out));
    CHECK(status == 0 && !strcmp(out, "12"), "reset reboots, RAM outside the ELF kept ('%s')", out);

    /* Same program with -no-reboot: the reset request ends the run. */
    lui(T0, 0x100);
    lui(T1, 0x7);
    addi(T1, T1, 0x777);
    stype(2, T1, T0, 0);
    putc_t1('X'); /* must never appear: the machine stops after the store */
    jump(ncode);
    status = run(1, true, out, sizeof(out));
    CHECK(status == 0 && out[0] == 0, "-no-reboot: reset request exits 0, nothing after it");

    /* WFI sleeps until the timer: mtimecmp = mtime + 20 ms, MTIE on. */
    lui(T0, 0x2004);            /* 0: t0 = 0x2004000 (mtimecmp) */
    lui(T2, 0x200c);            /* 1: t2 = 0x200c000 */
    itype(0x03, 3, T1, T2, -8); /* 2: ld t1, -8(t2) = mtime */
    lui(T2, 0x31);              /* 3: t2 = 0x31000 */
    addi(T2, T2, 0x2d0);        /* 4: t2 = 200000 ticks = 20 ms */
    emit(0x00730333);           /* 5: add t1, t1, t2 */
    stype(3, T1, T0, 0);        /* 6: sd t1, 0(t0) */
    addi(T2, ZERO, 0x80);       /* 7 */
    emit(0x3043a073);           /* 8: csrs mie, t2 (MTIE) */
    emit(0x10500073);           /* 9: wfi */
    finisher(0x5555);
    t0 = gw_now_ns();
    status = run(1, false, out, sizeof(out));
    t0 = gw_now_ns() - t0;
    CHECK(status == 0 && t0 >= 20000000ull, "WFI slept until the timer (%.1f ms)", t0 / 1e6);

    /* A fatal guest error: jump to 0 with mtvec = 0 (nothing to fetch). */
    jump(ncode + 0);
    code[0] = 0x00000067; /* jalr x0, 0(x0) */
    status = run(1, false, out, sizeof(out));
    CHECK(status == 1, "fatal guest error ends the run with status 1");

    /* Two harts: hart 1 stores its a0 to RAM and sleeps; hart 0 waits for
     * it and prints it as a digit. */
    auipc(T0, 0x100);          /* 0: t0 = 0x80100000 */
    branch(0, A0, ZERO, 5);    /* 1: beq a0, zero -> hart 0 */
    stype(3, A0, T0, 8);       /* 2: sd a0, 8(t0) */
    emit(0x10500073);          /* 3: wfi */
    jump(3);                   /* 4 */
    itype(0x03, 3, T2, T0, 8); /* 5: ld t2, 8(t0) */
    branch(0, T2, ZERO, 5);    /* 6: wait */
    addi(T2, T2, '0');         /* 7 */
    lui(T0, 0x10000);          /* 8 */
    stype(0, T2, T0, 0);       /* 9 */
    finisher(0x5555);
    status = run(2, false, out, sizeof(out));
    CHECK(status == 0 && !strcmp(out, "1"), "-smp 2: second hart runs with a0 = 1 ('%s')", out);

    /*
     * OpenSBI 1.1's HSM start race (see virt_run.c): hart 1 polls a flag
     * in a WFI loop that a pending, masked MSIP makes return at once;
     * hart 0 sets the flag, loses the CPU (a WFI that returns at once ends
     * its slice, as a slice boundary would), then writes the data.  Hart 1
     * takes 2,000 instructions from seeing the flag to reading the data
     * (OpenSBI's warm boot about 5,200), more than the slice a woken hart
     * gets, less than a full one: it must see hart 0's write, as on QEMU,
     * where both run at once.
     */
    auipc(T0, 0x100);           /* 0: t0 = 0x80100000: ready, flag, data */
    lui(T1, 0x2000);            /* 1: t1 = CLINT msip[0] */
    itype(0x13, 1, T2, A0, 2);  /* 2: slli t2, a0, 2 */
    emit(0x00730333);           /* 3: add t1, t1, t2 */
    addi(T2, ZERO, 1);          /* 4 */
    stype(2, T2, T1, 0);        /* 5: msip[hart] = 1 (never cleared) */
    addi(T2, ZERO, 8);          /* 6 */
    emit(0x3043a073);           /* 7: csrs mie, t2 (MSIE; mstatus.MIE stays 0) */
    branch(1, A0, ZERO, 20);    /* 8: bne a0, zero -> hart 1 */
    itype(0x03, 3, T2, T0, 0);  /* 9: hart 0: ld t2, 0(t0) (hart 1 polling?) */
    branch(1, T2, ZERO, 13);    /* 10 */
    emit(0x10500073);           /* 11: wfi */
    jump(9);                    /* 12 */
    addi(T2, ZERO, 1);          /* 13 */
    stype(3, T2, T0, 8);        /* 14: flag = 1 */
    emit(0x10500073);           /* 15: wfi: the slice ends between the stores */
    addi(T2, ZERO, 'Y');        /* 16 */
    stype(3, T2, T0, 16);       /* 17: data = 'Y' */
    emit(0x10500073);           /* 18: wfi */
    jump(18);                   /* 19 */
    addi(T2, ZERO, 1);          /* 20: hart 1 */
    stype(3, T2, T0, 0);        /* 21: polling from now on */
    emit(0x10500073);           /* 22: wfi */
    itype(0x03, 3, T2, T0, 8);  /* 23: ld t2, 8(t0) (flag) */
    branch(0, T2, ZERO, 22);    /* 24: beq t2, zero -> poll again */
    addi(T1, ZERO, 1000);       /* 25: 2,000 instructions of "warm boot" */
    addi(T1, T1, -1);           /* 26 */
    branch(1, T1, ZERO, 26);    /* 27 */
    itype(0x03, 3, T2, T0, 16); /* 28: ld t2, 16(t0) (data) */
    lui(T0, 0x10000);           /* 29 */
    stype(0, T2, T0, 0);        /* 30: print it */
    finisher(0x5555);
    status = run(2, false, out, sizeof(out));
    CHECK(status == 0 && !strcmp(out, "Y"),
          "a hart woken from WFI does not run ahead of the hart that woke it ('%s')", out);

    unlink(elf_path);
    unlink(ser_path);
    return board_check_done();
}
