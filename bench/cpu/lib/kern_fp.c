/*
 * Floating-point kernels: the double-precision classics (n-body, Mandelbrot,
 * spectral norm), single precision through fmaf/sqrtf/division, and the
 * range reduction plus polynomial shape of libm code (fcvt, fmv, fsgnj).
 * Results are hashed by bit pattern: IEEE semantics must be exact.
 */
#include "kern.h"

/* ---- n-body (the Computer Language Benchmarks Game shape) ---- */

struct body {
    double x, y, z, vx, vy, vz, mass;
};

#define PI         3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS       365.24

static void nbody_advance(struct body *b, int n, double dt)
{
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            double d2 = dx * dx + dy * dy + dz * dz;
            double mag = dt / (d2 * k_sqrt(d2));
            b[i].vx -= dx * b[j].mass * mag;
            b[i].vy -= dy * b[j].mass * mag;
            b[i].vz -= dz * b[j].mass * mag;
            b[j].vx += dx * b[i].mass * mag;
            b[j].vy += dy * b[i].mass * mag;
            b[j].vz += dz * b[i].mass * mag;
        }
    }
    for (int i = 0; i < n; i++) {
        b[i].x = __builtin_fma(dt, b[i].vx, b[i].x);
        b[i].y = __builtin_fma(dt, b[i].vy, b[i].y);
        b[i].z = __builtin_fma(dt, b[i].vz, b[i].z);
    }
}

static double nbody_energy(const struct body *b, int n)
{
    double e = 0;
    for (int i = 0; i < n; i++) {
        e += 0.5 * b[i].mass * (b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz);
        for (int j = i + 1; j < n; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            e -= b[i].mass * b[j].mass / k_sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

uint64_t kern_nbody(void)
{
    static const struct body init[5] = {
        {0, 0, 0, 0, 0, 0, SOLAR_MASS},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * DAYS, 7.69901118419740425e-03 * DAYS,
         -6.90460016972063023e-05 * DAYS, 9.54791938424326609e-04 * SOLAR_MASS},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * DAYS, 4.99852801234917238e-03 * DAYS,
         2.30417297573763929e-05 * DAYS, 2.85885980666130812e-04 * SOLAR_MASS},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * DAYS, 2.37847173959480950e-03 * DAYS,
         -2.96589568540237556e-05 * DAYS, 4.36624404335156298e-05 * SOLAR_MASS},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * DAYS, 1.62824170038242295e-03 * DAYS,
         -9.51592254519715870e-05 * DAYS, 5.15138902046611451e-05 * SOLAR_MASS}};
    struct body b[5];
    uint64_t h = 0;

    for (int i = 0; i < 5; i++)
        b[i] = init[i];
    double px = 0, py = 0, pz = 0; /* offset momentum */
    for (int i = 0; i < 5; i++) {
        px += b[i].vx * b[i].mass;
        py += b[i].vy * b[i].mass;
        pz += b[i].vz * b[i].mass;
    }
    b[0].vx = -px / SOLAR_MASS;
    b[0].vy = -py / SOLAR_MASS;
    b[0].vz = -pz / SOLAR_MASS;

    h = bench_mix(h, k_dbits(nbody_energy(b, 5)));
    long steps = BENCH_ITERS(500000);
    for (long s = 0; s < steps; s++)
        nbody_advance(b, 5, 0.01);
    h = bench_mix(h, k_dbits(nbody_energy(b, 5)));
    for (int i = 0; i < 5; i++)
        h = bench_mix(h, k_dbits(b[i].x) ^ k_dbits(b[i].vy));
    return h;
}

/* ---- Mandelbrot ---- */

uint64_t kern_mandel(void)
{
    enum { W = 128, H = 128, MAXIT = 100 };
    uint64_t h = 0;

    long frames = BENCH_ITERS(16);
    for (long f = 0; f < frames; f++) {
        double zoom = 1.0 / (1.0 + 0.25 * (double)f);
        double cx0 = -0.745 - 1.5 * zoom, cy0 = 0.1 - 1.2 * zoom;
        double step = 2.6 * zoom / W;
        for (int y = 0; y < H; y++) {
            uint64_t bits = 0;
            unsigned total = 0;
            double ci = cy0 + step * y;
            for (int x = 0; x < W; x++) {
                double cr = cx0 + step * x, zr = 0, zi = 0, zr2 = 0, zi2 = 0;
                int i = 0;
                while (i < MAXIT && zr2 + zi2 <= 4.0) {
                    zi = 2.0 * zr * zi + ci;
                    zr = zr2 - zi2 + cr;
                    zr2 = zr * zr;
                    zi2 = zi * zi;
                    i++;
                }
                total += (unsigned)i;
                bits = bits << 1 | (i == MAXIT);
                if ((x & 63) == 63) {
                    h = bench_mix(h, bits);
                    bits = 0;
                }
            }
            h = bench_mix(h, total);
        }
    }
    return h;
}

/* ---- spectral norm ---- */

static double spec_a(int i, int j)
{
    return 1.0 / ((double)((i + j) * (i + j + 1) / 2 + i + 1));
}

static void spec_av(int n, const double *v, double *out)
{
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < n; j++)
            s += spec_a(i, j) * v[j];
        out[i] = s;
    }
}

static void spec_atv(int n, const double *v, double *out)
{
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < n; j++)
            s += spec_a(j, i) * v[j];
        out[i] = s;
    }
}

uint64_t kern_spectral(void)
{
    enum { N = 400 };
    double *u = bench_alloc(N * sizeof(double), 64);
    double *v = bench_alloc(N * sizeof(double), 64);
    double *t = bench_alloc(N * sizeof(double), 64);
    uint64_t h = 0;

    long reps = BENCH_ITERS(12);
    for (long r = 0; r < reps; r++) {
        for (int i = 0; i < N; i++)
            u[i] = 1.0 + (double)r * 1e-3;
        for (int k = 0; k < 5; k++) {
            spec_av(N, u, t);
            spec_atv(N, t, v);
            spec_av(N, v, t);
            spec_atv(N, t, u);
        }
        double vbv = 0, vv = 0;
        for (int i = 0; i < N; i++) {
            vbv += u[i] * v[i];
            vv += v[i] * v[i];
        }
        h = bench_mix(h, k_dbits(k_sqrt(vbv / vv)));
        h = bench_mix(h, k_dbits(u[r % N]));
    }
    return h;
}

/* ---- single precision ---- */

uint64_t kern_sgemm(void)
{
    enum { N = 48, NVEC = 4096 };
    float *a = bench_alloc(N * N * sizeof(float), 64);
    float *b = bench_alloc(N * N * sizeof(float), 64);
    float *c = bench_alloc(N * N * sizeof(float), 64);
    float *vec = bench_alloc(NVEC * 3 * sizeof(float), 64);
    uint64_t seed = 0xf10a7, h = 0;

    for (int i = 0; i < N * N; i++) {
        a[i] = (float)((int32_t)(bench_rand(&seed) >> 40) - 8388608) / 8388608.0f;
        b[i] = (float)((int32_t)(bench_rand(&seed) >> 40) - 8388608) / 8388608.0f;
    }
    for (int i = 0; i < NVEC * 3; i++)
        vec[i] = (float)(int32_t)(bench_rand(&seed) >> 48) - 32768.0f;

    long iters = BENCH_ITERS(140);
    for (long it = 0; it < iters; it++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                float s = 0;
                for (int k = 0; k < N; k++)
                    s = __builtin_fmaf(a[i * N + k], b[k * N + j], s);
                c[i * N + j] = s;
            }
        /* Feed back, scaled so values stay finite and keep changing. */
        float big = 0;
        for (int i = 0; i < N * N; i++)
            big = k_fmaxf(big, __builtin_fabsf(c[i]));
        float inv = 1.0f / big;
        for (int i = 0; i < N * N; i++)
            a[i] = c[i] * inv - a[i] * 0.25f;
        /* Normalise 3-vectors: sqrtf and a division each. */
        uint32_t acc = 0;
        for (int i = 0; i < NVEC; i++) {
            float *p = &vec[3 * i];
            float len = k_sqrtf(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) + 1e-3f;
            float x = p[0] / len, y = p[1] / len, z = p[2] / len;
            acc += (uint32_t)(int32_t)(x * 1000.0f) ^ (uint32_t)(int32_t)(z * 7.0f);
            p[0] = y * 1.5f + (float)(i & 15);
            p[1] = z * 3.0f - x;
            p[2] = x + (float)it;
        }
        h = bench_mix(h, acc);
        h = bench_mix(h, k_fbits(big));
    }
    for (int i = 0; i < N * N; i += 7)
        h = bench_mix(h, k_fbits(c[i]));
    return h;
}

/* ---- libm-shaped code ---- */

/* exp(x): x = k ln2 + r, |r| <= ln2/2, Taylor to degree 11, scale by 2^k. */
static double k_exp(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10,
                 inv_ln2 = 1.44269504088896338700e+00;
    if (x > 709.0)
        x = 709.0;
    if (x < -708.0)
        x = -708.0;
    int64_t k = k_lrint(x * inv_ln2);
    double r = (x - (double)k * ln2_hi) - (double)k * ln2_lo;
    double p = 1.0 / 39916800;
    static const double inv_fact[] = {1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040,
                                      1.0 / 720,     1.0 / 120,    1.0 / 24,    1.0 / 6,
                                      0.5,           1.0,          1.0};
    for (int i = 0; i < 11; i++)
        p = __builtin_fma(p, r, inv_fact[i]);
    return p * k_bitsd((uint64_t)(k + 1023) << 52);
}

/* log(x), x > 0: split off the exponent, then atanh series in s. */
static double k_log(double x)
{
    uint64_t bits = k_dbits(x);
    int64_t e = (int64_t)((bits >> 52) & 0x7ff) - 1023;
    double m = k_bitsd((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    double s = (m - 1.0) / (m + 1.0), s2 = s * s, p = 0;
    for (int i = 12; i >= 0; i--)
        p = __builtin_fma(p, s2, 1.0 / (2 * i + 1));
    return 2.0 * s * p + (double)e * 0.6931471805599453;
}

/* sin(x): reduce by pi/2 to [-pi/4, pi/4], then the right polynomial. */
static double k_sin(double x)
{
    const double pio2_hi = 1.57079632673412561417e+00, pio2_lo = 6.07710050650619224932e-11;
    int64_t q = k_lrint(x * 0.63661977236758134308);
    double r = (x - (double)q * pio2_hi) - (double)q * pio2_lo, r2 = r * r;
    double s = r * (1 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 / 362880))));
    double c = 1 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 / 40320)));
    double v = (q & 1) ? c : s;
    return (q & 2) ? -v : v;
}

uint64_t kern_libm(void)
{
    uint64_t h = 0;
    double acc = 0;

    long iters = BENCH_ITERS(550000);
    for (long i = 0; i < iters; i++) {
        double x = (double)(i % 20000) * 0.0137 - 137.0;
        double e = k_exp(x * 0.05);
        double l = k_log(__builtin_fabs(x) + 1e-9);
        double s = k_sin(x);
        double v = __builtin_copysign(e * 1e-3 + l, s) + s;
        acc = k_fmin(acc + v, 1e300);
        if ((i & 1023) == 0) {
            h = bench_mix(h, k_dbits(acc));
            h = bench_mix(h, (uint64_t)(int64_t)(v * 1e6)); /* fcvt.l.d, rtz */
        }
    }
    return bench_mix(h, k_dbits(acc));
}
