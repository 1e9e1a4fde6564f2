/*
 * The demo guest for `make demo`: a bare-metal RV64GC program that shows the
 * hart at work (integer, floating point, traps into S and U mode) and exits
 * through the test device.  Its output is identical on QEMU's virt board.
 */
#include "rt.h"

static long in_user(long n)
{
    long sum = 0;
    for (long i = 1; i <= n; i++)
        sum += i * i;
    return sum;
}

static void mandelbrot(void)
{
    static const char shade[] = " .:-=+*#%@";
    for (int row = 0; row < 22; row++) {
        double ci = -1.1 + row * 0.1;
        for (int col = 0; col < 72; col++) {
            double cr = -2.1 + col * 0.04, zr = 0, zi = 0;
            int it = 0;
            while (it < 90 && zr * zr + zi * zi < 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
                it++;
            }
            rt_putc(shade[it * 9 / 90]);
        }
        rt_putc('\n');
    }
}

int main(void)
{
    rt_printf("godwit demo: a bare-metal RV64GC guest on the virt board\n");
    rt_printf("running on hart %lu in M-mode\n\n", csr_read(mhartid));
    csr_set(mstatus, MSTATUS_FS);
    mandelbrot();
    rt_printf("\nsum of squares 1..1000 computed in U-mode: %ld\n",
              rt_run_in_mode(RT_U, in_user, 1000));
    rt_printf("sum of squares 1..1000 computed in S-mode: %ld\n",
              rt_run_in_mode(RT_S, in_user, 1000));
    rt_printf("powering off through the sifive test device\n");
    return 0;
}
