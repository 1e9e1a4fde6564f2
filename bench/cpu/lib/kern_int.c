/*
 * Integer kernels in the spirit of CoreMark (list processing, matrix, state
 * machine, CRC) plus what kernels and userlands do all day: hash tables
 * behind a lock, sorting through a comparison callback.
 */
#include "kern.h"

/* CRC-16/ARC, bit at a time (CoreMark's crcu8 computes the same thing). */
static uint16_t crc16_u8(uint16_t crc, uint8_t data)
{
    for (int i = 0; i < 8; i++) {
        if ((crc ^ data) & 1)
            crc = (uint16_t)((crc >> 1) ^ 0xa001);
        else
            crc >>= 1;
        data >>= 1;
    }
    return crc;
}

static uint16_t crc16_u16(uint16_t crc, uint16_t v)
{
    return crc16_u8(crc16_u8(crc, (uint8_t)v), (uint8_t)(v >> 8));
}

/* ---- list ---------------------------------------------------------------- */

struct lnode {
    struct lnode *next;
    int16_t data;
    int16_t idx;
};

typedef int (*lnode_cmp)(const struct lnode *, const struct lnode *);

static int lnode_weight(const struct lnode *n)
{
    int v = n->data;
    return ((v * 0x9e37) ^ (v >> 3)) & 0x7fff;
}

static int cmp_weight(const struct lnode *a, const struct lnode *b)
{
    return lnode_weight(a) - lnode_weight(b);
}

static int cmp_idx(const struct lnode *a, const struct lnode *b)
{
    return a->idx - b->idx;
}

static struct lnode *list_reverse(struct lnode *l)
{
    struct lnode *prev = NULL;

    while (l) {
        struct lnode *next = l->next;
        l->next = prev;
        prev = l;
        l = next;
    }
    return prev;
}

static struct lnode *list_find(struct lnode *l, int idx, int data)
{
    if (idx >= 0) {
        while (l && l->idx != idx)
            l = l->next;
    } else {
        while (l && (l->data & 0xff) != data)
            l = l->next;
    }
    return l;
}

/* Bottom-up merge sort of a singly linked list (stable, no recursion). */
static struct lnode *list_sort(struct lnode *list, lnode_cmp cmp)
{
    for (long insize = 1;; insize *= 2) {
        struct lnode *p = list, *tail = NULL;
        long nmerges = 0;
        list = NULL;
        while (p) {
            struct lnode *q = p;
            long psize = 0, qsize = insize;
            nmerges++;
            while (psize < insize && q) {
                psize++;
                q = q->next;
            }
            while (psize > 0 || (qsize > 0 && q)) {
                struct lnode *e;
                if (psize == 0) {
                    e = q;
                    q = q->next;
                    qsize--;
                } else if (qsize == 0 || !q || cmp(p, q) <= 0) {
                    e = p;
                    p = p->next;
                    psize--;
                } else {
                    e = q;
                    q = q->next;
                    qsize--;
                }
                if (tail)
                    tail->next = e;
                else
                    list = e;
                tail = e;
            }
            p = q;
        }
        tail->next = NULL;
        if (nmerges <= 1)
            return list;
    }
}

uint64_t kern_list(void)
{
    enum { NODES = 1024 };
    struct lnode *pool = bench_alloc(NODES * sizeof(*pool), 64);
    uint64_t seed = 0x1234567;
    uint16_t crc = 0;
    unsigned found = 0, missed = 0;

    for (int i = 0; i < NODES; i++) {
        pool[i].next = i + 1 < NODES ? &pool[i + 1] : NULL;
        pool[i].idx = (int16_t)i;
        pool[i].data = (int16_t)bench_rand(&seed);
    }
    struct lnode *list = &pool[0];
    long iters = BENCH_ITERS(1000);
    for (long it = 0; it < iters; it++) {
        for (int j = 0; j < 6; j++) {
            struct lnode *f = list_find(list, -1, (int)((it * 7 + j * 31) & 0xff));
            list = list_reverse(list);
            if (!f) {
                missed++;
                crc = crc16_u16(crc, (uint16_t)list->next->data);
            } else {
                found++;
                crc = crc16_u16(crc, (uint16_t)f->data);
                if (f->next) { /* move f's successor to the second slot */
                    struct lnode *m = f->next;
                    f->next = m->next;
                    m->next = list->next;
                    list->next = m;
                }
            }
        }
        list = list_sort(list, cmp_weight);
        /* Unlink one node by index, perturb it, put it back at the head. */
        int want = (int)((it * 37) % NODES);
        struct lnode *prev = NULL, *n = list;
        while (n && n->idx != want) {
            prev = n;
            n = n->next;
        }
        if (n && prev) {
            prev->next = n->next;
            n->data = (int16_t)(n->data * 5 + (int)it);
            n->next = list;
            list = n;
        }
        struct lnode *f = list_find(list, want, 0);
        crc = crc16_u16(crc, f ? (uint16_t)f->data : 0xffff);
        list = list_sort(list, cmp_idx);
        crc = crc16_u16(crc, (uint16_t)list->data);
    }
    uint64_t h = bench_mix(crc, found);
    h = bench_mix(h, missed);
    for (struct lnode *n = list; n; n = n->next)
        h = bench_mix(h, (uint16_t)n->data ^ ((uint32_t)n->idx << 16));
    return h;
}

/* ---- matrix -------------------------------------------------------------- */

enum { MAT_N = 40 };

static void mat_add_const(int16_t *a, int16_t v)
{
    for (int i = 0; i < MAT_N * MAT_N; i++)
        a[i] = (int16_t)(a[i] + v);
}

static void mat_mul_const(int32_t *c, const int16_t *a, int16_t v)
{
    for (int i = 0; i < MAT_N * MAT_N; i++)
        c[i] = (int32_t)a[i] * v;
}

static void mat_mul_vect(int32_t *c, const int16_t *a, const int16_t *b)
{
    for (int i = 0; i < MAT_N; i++) {
        int32_t s = 0;
        for (int j = 0; j < MAT_N; j++)
            s += (int32_t)a[i * MAT_N + j] * b[j];
        c[i] = s;
    }
}

static void mat_mul_mat(int32_t *c, const int16_t *a, const int16_t *b)
{
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t s = 0;
            for (int k = 0; k < MAT_N; k++)
                s += (int32_t)a[i * MAT_N + k] * b[k * MAT_N + j];
            c[i * MAT_N + j] = s;
        }
}

static void mat_mul_bits(int32_t *c, const int16_t *a, const int16_t *b)
{
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t s = 0;
            for (int k = 0; k < MAT_N; k++) {
                int32_t t = (int32_t)a[i * MAT_N + k] * b[k * MAT_N + j];
                s += ((t >> 2) & 0xf) * ((t >> 5) & 0x7f);
            }
            c[i * MAT_N + j] = s;
        }
}

/* CoreMark's matrix_sum: a branchy reduction with a clip value. */
static int16_t mat_sum(const int32_t *c, int32_t clip)
{
    int32_t tmp = 0, prev = 0;
    int16_t ret = 0;

    for (int i = 0; i < MAT_N * MAT_N; i++) {
        int32_t cur = c[i];
        tmp += cur;
        if (tmp > clip) {
            ret += 10;
            tmp = 0;
        } else {
            ret += (cur > prev) ? 1 : 0;
        }
        prev = cur;
    }
    return ret;
}

uint64_t kern_matrix(void)
{
    int16_t *a = bench_alloc(MAT_N * MAT_N * sizeof(*a), 64);
    int16_t *b = bench_alloc(MAT_N * MAT_N * sizeof(*b), 64);
    int32_t *c = bench_alloc(MAT_N * MAT_N * sizeof(*c), 64);
    uint64_t seed = 0xabcdef;
    uint16_t crc = 0;

    for (int i = 0; i < MAT_N * MAT_N; i++) {
        a[i] = (int16_t)(bench_rand(&seed) & 0x3ff);
        b[i] = (int16_t)(bench_rand(&seed) & 0x3ff);
    }
    long iters = BENCH_ITERS(1500);
    for (long it = 0; it < iters; it++) {
        int16_t v = (int16_t)(it | 0x10);
        mat_add_const(a, v);
        mat_mul_const(c, a, v);
        crc = crc16_u16(crc, (uint16_t)mat_sum(c, 0x7fff * 16));
        mat_mul_vect(c, a, b);
        crc = crc16_u16(crc, (uint16_t)mat_sum(c, 0x7fff * 16));
        mat_mul_mat(c, a, b);
        crc = crc16_u16(crc, (uint16_t)mat_sum(c, 0x7fff * 16));
        mat_mul_bits(c, a, b);
        crc = crc16_u16(crc, (uint16_t)mat_sum(c, 0x7fff * 16));
        mat_add_const(a, (int16_t)-v);
        /* Keep the inputs moving so no two iterations are identical. */
        a[it % (MAT_N * MAT_N)] ^= (int16_t)(crc & 0x3ff);
    }
    uint64_t h = crc;
    for (int i = 0; i < MAT_N * MAT_N; i++)
        h = bench_mix(h, (uint32_t)c[i] ^ ((uint64_t)(uint16_t)a[i] << 32));
    return h;
}

/* ---- state machine ------------------------------------------------------- */

enum tok_state {
    ST_START,
    ST_INVALID,
    ST_S1,
    ST_INT,
    ST_FLOAT,
    ST_S2,
    ST_EXPONENT,
    ST_SCIENTIFIC,
    ST_COUNT
};

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Scans one comma-terminated token; returns the final state. */
static enum tok_state scan_token(const uint8_t **pp, unsigned *transitions)
{
    const uint8_t *p = *pp;
    enum tok_state st = ST_START;

    for (; *p && st != ST_INVALID; p++) {
        uint8_t c = *p;
        if (c == ',') {
            p++;
            break;
        }
        enum tok_state next = st;
        switch (st) {
        case ST_START:
            if (is_digit(c))
                next = ST_INT;
            else if (c == '+' || c == '-')
                next = ST_S1;
            else if (c == '.')
                next = ST_FLOAT;
            else
                next = ST_INVALID;
            break;
        case ST_S1:
            if (is_digit(c))
                next = ST_INT;
            else if (c == '.')
                next = ST_FLOAT;
            else
                next = ST_INVALID;
            break;
        case ST_INT:
            if (c == '.')
                next = ST_FLOAT;
            else if (!is_digit(c))
                next = ST_INVALID;
            break;
        case ST_FLOAT:
            if (c == 'E' || c == 'e')
                next = ST_S2;
            else if (!is_digit(c))
                next = ST_INVALID;
            break;
        case ST_S2:
            if (c == '+' || c == '-')
                next = ST_EXPONENT;
            else
                next = ST_INVALID;
            break;
        case ST_EXPONENT:
            if (is_digit(c))
                next = ST_SCIENTIFIC;
            else
                next = ST_INVALID;
            break;
        case ST_SCIENTIFIC:
            if (!is_digit(c))
                next = ST_INVALID;
            break;
        default: break;
        }
        if (next != st)
            transitions[st]++;
        st = next;
    }
    while (*p && p[-1] != ',')
        p++; /* skip the rest of an invalid token */
    *pp = p;
    return st;
}

static const char *const state_tokens[] = {
    "5012",     "1234",     "-874",     "+122",     "35.54400", ".1234500", "-110.700", "+0.64400",
    "5.500e+3", "-.123e-2", "-87e+832", "+0.6e-12", "T0.3e-1F", "-T.T++Tq", "1T3.4e4z", "34.0e-T^"};

uint64_t kern_state(void)
{
    enum { LEN = 4096 };
    uint8_t *buf = bench_alloc(LEN + 1, 64);
    uint64_t seed = 0x5eed;
    unsigned finals[ST_COUNT] = {0}, transitions[ST_COUNT] = {0};
    size_t n = 0;

    for (;;) {
        const char *t = state_tokens[bench_rand(&seed) & 15];
        size_t len = 0;
        while (t[len])
            len++;
        if (n + len + 1 > LEN)
            break;
        for (size_t i = 0; i < len; i++)
            buf[n++] = (uint8_t)t[i];
        buf[n++] = ',';
    }
    buf[n] = 0;

    long iters = BENCH_ITERS(3500);
    for (long it = 0; it < iters; it++) {
        const uint8_t *p = buf;
        while (*p)
            finals[scan_token(&p, transitions)]++;
        /* Corrupt every 97th byte in a way that depends on the pass, scan
         * again, then undo: the token mix changes from pass to pass. */
        uint8_t key = (uint8_t)(it & 0x1f);
        for (size_t i = (size_t)(it % 97); i < n; i += 97)
            if (buf[i] != ',')
                buf[i] ^= key;
        p = buf;
        while (*p)
            finals[scan_token(&p, transitions)]++;
        for (size_t i = (size_t)(it % 97); i < n; i += 97)
            if (buf[i] != ',')
                buf[i] ^= key;
    }
    uint64_t h = 0;
    for (int i = 0; i < ST_COUNT; i++)
        h = bench_mix(bench_mix(h, finals[i]), transitions[i]);
    return h;
}

/* ---- CRC ----------------------------------------------------------------- */

static uint32_t crc32_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

static uint32_t crc32_table(const uint32_t *tab, uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = tab[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint64_t kern_crc(void)
{
    enum { LEN = 64 * 1024 };
    uint8_t *buf = bench_alloc(LEN, 64);
    uint32_t *tab = bench_alloc(256 * sizeof(*tab), 64);
    uint64_t seed = 0xc4c4c4;
    uint64_t h = 0;

    for (size_t i = 0; i < LEN; i += 8) {
        uint64_t r = bench_rand(&seed);
        for (int k = 0; k < 8; k++)
            buf[i + k] = (uint8_t)(r >> (8 * k));
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1));
        tab[i] = c;
    }
    long iters = BENCH_ITERS(600);
    for (long it = 0; it < iters; it++) {
        uint32_t a = crc32_bitwise((uint32_t)it, buf, LEN / 4);
        uint32_t b = crc32_table(tab, (uint32_t)it, buf, LEN);
        uint16_t c = 0;
        for (size_t i = 0; i < LEN / 16; i++)
            c = crc16_u8(c, buf[i]);
        buf[it % LEN] ^= (uint8_t)(a ^ b);
        h = bench_mix(h, ((uint64_t)a << 32 | b) ^ c);
    }
    return h;
}

/* ---- hash table under a spinlock ----------------------------------------- */

enum { HT_SLOTS = 65521 }; /* prime: the index is a remainder */
#define HT_EMPTY 0ull
#define HT_TOMB  1ull

struct ht_slot {
    uint64_t key;
    uint64_t val;
};

struct ht {
    struct ht_slot *slots;
    int lock;
    uint64_t ops;    /* atomic add */
    uint64_t maxlen; /* longest probe, compare-and-swap max */
};

static void ht_lock(struct ht *t)
{
    while (__atomic_exchange_n(&t->lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&t->lock, __ATOMIC_RELAXED))
            ;
}

static void ht_unlock(struct ht *t)
{
    __atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE);
}

static void ht_note_probe(struct ht *t, uint64_t len)
{
    uint64_t cur = __atomic_load_n(&t->maxlen, __ATOMIC_RELAXED);
    while (len > cur && !__atomic_compare_exchange_n(&t->maxlen, &cur, len, 1, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED))
        ;
    __atomic_fetch_add(&t->ops, 1, __ATOMIC_RELAXED);
}

static uint64_t ht_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 29;
    return key;
}

/* Returns the slot holding key, or NULL; *free_slot gets the first reusable
 * slot on the probe path. */
static struct ht_slot *ht_probe(struct ht *t, uint64_t key, struct ht_slot **free_slot)
{
    uint64_t i = ht_hash(key) % HT_SLOTS;
    uint64_t step = 1 + key % (HT_SLOTS - 2);
    uint64_t len = 0;

    *free_slot = NULL;
    for (;; len++) {
        struct ht_slot *s = &t->slots[i];
        if (s->key == HT_EMPTY) {
            if (!*free_slot)
                *free_slot = s;
            ht_note_probe(t, len);
            return NULL;
        }
        if (s->key == HT_TOMB) {
            if (!*free_slot)
                *free_slot = s;
        } else if (s->key == key) {
            ht_note_probe(t, len);
            return s;
        }
        i += step;
        if (i >= HT_SLOTS)
            i -= HT_SLOTS;
    }
}

uint64_t kern_hash(void)
{
    struct ht t = {0};
    uint64_t h = 0;
    t.slots = bench_alloc(HT_SLOTS * sizeof(*t.slots), 64);

    long iters = BENCH_ITERS(64);
    for (long it = 0; it < iters; it++) {
        uint64_t seed = 0x9a9a + (uint64_t)it;
        for (size_t i = 0; i < HT_SLOTS; i++)
            t.slots[i].key = HT_EMPTY;
        /* Insert 40000 keys out of a 65536-key universe: some collide. */
        for (int i = 0; i < 40000; i++) {
            uint64_t key = (bench_rand(&seed) & 0xffff) * 0x10001 + 2;
            struct ht_slot *fs, *s;
            ht_lock(&t);
            s = ht_probe(&t, key, &fs);
            if (s) {
                s->val++;
            } else {
                fs->key = key;
                fs->val = (uint64_t)i;
            }
            ht_unlock(&t);
        }
        /* Lookups, then deletes that leave tombstones, then lookups. */
        uint64_t hits = 0, sum = 0;
        for (int pass = 0; pass < 3; pass++) {
            uint64_t s2 = 0x77 + (uint64_t)pass;
            for (int i = 0; i < 30000; i++) {
                uint64_t key = (bench_rand(&s2) & 0xffff) * 0x10001 + 2;
                struct ht_slot *fs, *s;
                ht_lock(&t);
                s = ht_probe(&t, key, &fs);
                if (s) {
                    hits++;
                    sum += s->val;
                    if (pass == 1 && (key & 3) == 0)
                        s->key = HT_TOMB;
                }
                ht_unlock(&t);
            }
        }
        h = bench_mix(h, hits);
        h = bench_mix(h, sum);
    }
    h = bench_mix(h, t.ops);
    return bench_mix(h, t.maxlen);
}

/* ---- sort through a callback ------------------------------------------- */

typedef int (*sort_cmp)(const void *, const void *);

static void swap_bytes(void *a, void *b, size_t size)
{
    if (size == 8) {
        uint64_t t = *(uint64_t *)a;
        *(uint64_t *)a = *(uint64_t *)b;
        *(uint64_t *)b = t;
        return;
    }
    uint8_t *x = a, *y = b;
    while (size--) {
        uint8_t t = *x;
        *x++ = *y;
        *y++ = t;
    }
}

/* Quicksort with median-of-three and insertion sort for short ranges, the
 * shape of a libc qsort: every comparison is an indirect call. */
static void qsort_generic(void *base, size_t n, size_t size, sort_cmp cmp)
{
    uint8_t *b = base;

    while (n > 12) {
        uint8_t *lo = b, *mid = b + (n / 2) * size, *hi = b + (n - 1) * size;
        if (cmp(mid, lo) < 0)
            swap_bytes(mid, lo, size);
        if (cmp(hi, mid) < 0) {
            swap_bytes(hi, mid, size);
            if (cmp(mid, lo) < 0)
                swap_bytes(mid, lo, size);
        }
        swap_bytes(mid, hi - size, size); /* pivot to n-2 */
        uint8_t *pivot = hi - size;
        uint8_t *i = lo, *j = pivot;
        for (;;) {
            do
                i += size;
            while (cmp(i, pivot) < 0);
            do
                j -= size;
            while (cmp(j, pivot) > 0);
            if (i >= j)
                break;
            swap_bytes(i, j, size);
        }
        swap_bytes(i, pivot, size);
        size_t left = (size_t)(i - b) / size;
        size_t right = n - left - 1;
        /* Recurse into the smaller side, loop on the larger. */
        if (left < right) {
            qsort_generic(b, left, size, cmp);
            b = i + size;
            n = right;
        } else {
            qsort_generic(i + size, right, size, cmp);
            n = left;
        }
    }
    for (size_t k = 1; k < n; k++)
        for (uint8_t *p = b + k * size; p > b && cmp(p - size, p) > 0; p -= size)
            swap_bytes(p - size, p, size);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    const uint8_t *x = *(const uint8_t *const *)a;
    const uint8_t *y = *(const uint8_t *const *)b;
    while (*x && *x == *y) {
        x++;
        y++;
    }
    return *x - *y;
}

uint64_t kern_sort(void)
{
    enum { NINT = 32768, NSTR = 8192 };
    int32_t *v = bench_alloc(NINT * sizeof(*v), 64);
    uint8_t **strs = bench_alloc(NSTR * sizeof(*strs), 64);
    uint8_t *text = bench_alloc(NSTR * 24, 64);
    uint64_t h = 0;

    long iters = BENCH_ITERS(24);
    for (long it = 0; it < iters; it++) {
        uint64_t seed = 0x50f7 + (uint64_t)it;
        for (int i = 0; i < NINT; i++)
            v[i] = (int32_t)bench_rand(&seed) >> (it & 7);
        qsort_generic(v, NINT, sizeof(*v), cmp_i32);
        for (int i = 0; i < NINT; i += 61)
            h = bench_mix(h, (uint32_t)v[i]);
        for (int i = 1; i < NINT; i++)
            if (v[i - 1] > v[i])
                bench_fail("sort: ints out of order");

        uint8_t *t = text;
        for (int i = 0; i < NSTR; i++) {
            uint64_t r = bench_rand(&seed);
            int len = 4 + (int)(r % 16);
            strs[i] = t;
            for (int k = 0; k < len; k++) /* few letters: long common prefixes */
                *t++ = (uint8_t)('a' + (bench_rand(&seed) >> 61));
            *t++ = 0;
        }
        qsort_generic(strs, NSTR, sizeof(*strs), cmp_str);
        for (int i = 0; i < NSTR; i += 37)
            for (const uint8_t *p = strs[i]; *p; p++)
                h = bench_mix(h, *p);
    }
    return h;
}
