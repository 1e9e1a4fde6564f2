/*
 * rvfuzz's files (included by rvfuzz.c after its layout constants): the
 * ELF writer for generated programs and the comparison of two register
 * dumps (`rvfuzz cmp`).
 */
#ifndef GODWIT_TESTS_TOOLS_RVFUZZ_IO_H
#define GODWIT_TESTS_TOOLS_RVFUZZ_IO_H

/* ---- ELF writer ----------------------------------------------------------- */

static void le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ELF64 header + two PT_LOAD program headers, code then data. */
static int write_elf(const char *path, const uint8_t *code, size_t code_len, const uint8_t *data,
                     size_t data_len, uint64_t entry)
{
    uint8_t hdr[64 + 2 * 56];
    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, "\177ELF", 4);
    hdr[4] = 2;          /* ELFCLASS64 */
    hdr[5] = 1;          /* little endian */
    hdr[6] = 1;          /* EV_CURRENT */
    le16(hdr + 16, 2);   /* ET_EXEC */
    le16(hdr + 18, 243); /* EM_RISCV */
    le32(hdr + 20, 1);
    le64(hdr + 24, entry);
    le64(hdr + 32, 64);  /* e_phoff */
    le64(hdr + 40, 0);   /* e_shoff */
    le32(hdr + 48, 0x5); /* EF_RISCV_RVC | EF_RISCV_FLOAT_ABI_DOUBLE */
    le16(hdr + 52, 64);
    le16(hdr + 54, 56);
    le16(hdr + 56, 2);
    le16(hdr + 58, 64);
    le16(hdr + 60, 0);
    le16(hdr + 62, 0);
    size_t code_off = 0x1000, data_off = (code_off + code_len + 0xfff) & ~(size_t)0xfff;
    uint8_t *ph = hdr + 64;
    le32(ph + 0, 1); /* PT_LOAD */
    le32(ph + 4, 5); /* R X */
    le64(ph + 8, code_off);
    le64(ph + 16, CODE_BASE);
    le64(ph + 24, CODE_BASE);
    le64(ph + 32, code_len);
    le64(ph + 40, code_len);
    le64(ph + 48, 0x1000);
    ph += 56;
    le32(ph + 0, 1);
    le32(ph + 4, 6); /* R W */
    le64(ph + 8, data_off);
    le64(ph + 16, DATA_BASE);
    le64(ph + 24, DATA_BASE);
    le64(ph + 32, data_len);
    le64(ph + 40, data_len);
    le64(ph + 48, 0x1000);

    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    static const uint8_t zeros[4096];
    int ok = fwrite(hdr, sizeof(hdr), 1, f) == 1;
    ok = ok && fwrite(zeros, code_off - sizeof(hdr), 1, f) == 1;
    ok = ok && fwrite(code, code_len, 1, f) == 1;
    if (data_off > code_off + code_len)
        ok = ok && fwrite(zeros, data_off - code_off - code_len, 1, f) == 1;
    ok = ok && fwrite(data, data_len, 1, f) == 1;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -EIO;
}

static int gen_one(uint64_t seed, const char *out, const char *asm_out, unsigned insns,
                   unsigned segments)
{
    uint8_t *code = malloc(CODE_MAX);
    uint8_t *data = calloc(1, DATA_SIZE);
    FILE *as = NULL;
    int ret = -ENOMEM;
    if (!code || !data)
        goto out;
    if (asm_out) {
        as = fopen(asm_out, "w");
        if (!as) {
            ret = -errno;
            goto out;
        }
    }
    size_t len;
    uint64_t entry;
    ret = build(seed, insns, segments, code, &len, data, as, &entry);
    if (!ret)
        ret = write_elf(out, code, len, data, DATA_SIZE, entry);
out:
    if (as)
        fclose(as);
    free(code);
    free(data);
    return ret;
}

/* ---- comparison ------------------------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

static void reg_name(unsigned idx, char *out, size_t n)
{
    /* Within a dump: 0 = marker, 1..31 = x1..x31, 32..63 = f0..f31, 64 fcsr,
     * 65 trap count, 66 trap hash, 67 checksum */
    if (idx == 0)
        snprintf(out, n, "dump marker");
    else if (idx < 32)
        snprintf(out, n, "x%u (%s)", idx, xname[idx]);
    else if (idx < 64)
        snprintf(out, n, "f%u (%s)", idx - 32, fname[idx - 32]);
    else if (idx == 64)
        snprintf(out, n, "fcsr");
    else if (idx == 65)
        snprintf(out, n, "trap count");
    else if (idx == 66)
        snprintf(out, n, "trap hash (cause, tval, epc)");
    else
        snprintf(out, n, "scratch checksum");
}

static int cmp_outputs(const char *a_path, const char *b_path)
{
    size_t alen, blen;
    char *a = slurp(a_path, &alen), *b = slurp(b_path, &blen);
    if (!a || !b) {
        fprintf(stderr, "rvfuzz cmp: cannot read %s\n", !a ? a_path : b_path);
        free(a);
        free(b);
        return 2;
    }
    int ret = 0;
    char *pa = a, *pb = b;
    for (unsigned line = 0;; line++) {
        char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
        size_t la = ea ? (size_t)(ea - pa) : strlen(pa), lb = eb ? (size_t)(eb - pb) : strlen(pb);
        if (!*pa && !*pb)
            break;
        if (la != lb || memcmp(pa, pb, la) != 0) {
            char name[48];
            reg_name(line % NDUMP, name, sizeof(name));
            printf("first difference: line %u = dump %u %s: expected %.*s, got %.*s\n", line + 1,
                   line / NDUMP, name, (int)la, pa, (int)lb, *pb ? pb : "(end of output)");
            ret = 1;
            break;
        }
        if (!ea || !eb) {
            if (ea != eb) {
                printf("first difference: line %u: one output ends early\n", line + 1);
                ret = 1;
            }
            break;
        }
        pa = ea + 1;
        pb = eb + 1;
    }
    free(a);
    free(b);
    return ret;
}

#endif
