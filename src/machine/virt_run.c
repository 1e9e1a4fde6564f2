/*
 * The machine loop: runs the harts round-robin in slices on one thread,
 * keeps device timers ticking between slices, sleeps the host thread when
 * every hart waits in WFI, and turns guest and host requests (power off,
 * reset, stop) into the process exit status.
 *
 * Timer interrupts are delivered at slice boundaries: a slice is short
 * enough (VIRT_SLICE_INSNS) that MTIP rises within tens of microseconds of
 * its deadline while the harts run, and the WFI sleep ends at the deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "machine/virt_int.h"

#define VIRT_SLICE_INSNS   10000
#define VIRT_INPUT_POLL_NS 1000000ull /* look for console input every 1 ms while running */
#define VIRT_IO_POLL_NS    1000000ull /* and give devices' host I/O a turn as often */
#define VIRT_IO_FDS        32         /* device fds the sleep waits on, at most */

/* Hand buffered console input to the UART receiver as it has room. */
static void virt_serial_pump(struct virt *vm)
{
    for (;;) {
        size_t len, n;
        const uint8_t *p = chardev_input(vm->serial, &len);
        if (len == 0)
            return;
        n = uart_receive(vm->uart, p, len);
        if (n == 0)
            return;
        chardev_consume(vm->serial, n);
    }
}

/* Read console input if any is waiting (never blocks). */
static void virt_serial_poll(struct virt *vm, const struct pollfd *fds, int n)
{
    bool ready = false;

    for (int i = 0; i < n; i++)
        if (fds[i].revents)
            ready = true;
    if (ready)
        chardev_service(vm->serial);
}

static void virt_input_check(struct virt *vm, uint64_t now)
{
    struct pollfd fds[2];
    int n;

    if (now - vm->last_input_poll < VIRT_INPUT_POLL_NS)
        return;
    vm->last_input_poll = now;
    n = chardev_pollfds(vm->serial, fds, 2);
    if (n > 0 && poll(fds, (nfds_t)n, 0) <= 0)
        n = 0;
    virt_serial_poll(vm, fds, n);
}

/* Give virtio devices with host I/O (e.g. a network backend) a turn: at
 * most every VIRT_IO_POLL_NS while the harts run, always after a sleep. */
static void virt_io_poll(struct virt *vm, uint64_t now, bool force)
{
    if (!force && now - vm->last_virtio_poll < VIRT_IO_POLL_NS)
        return;
    vm->last_virtio_poll = now;
    virt_virtio_poll(vm);
}

/* Sleep until the next device deadline, console input, device I/O, or a
 * kick (virt_kick). */
static void virt_sleep(struct virt *vm)
{
    uint64_t deadline = clint_next_deadline(vm->clint), now;
    uint64_t uart_deadline = uart_next_deadline(vm->uart);
    uint64_t rtc_deadline = goldfish_rtc_next_deadline(vm->rtc);
    uint64_t io_deadline = virt_virtio_next_deadline(vm);
    struct pollfd p[3 + VIRT_IO_FDS] = {{.fd = vm->wake_fd, .events = POLLIN}};
    struct timespec ts, *tsp = NULL;
    uint64_t drain;
    int nin = chardev_pollfds(vm->serial, p + 1, 2);
    int nio = virt_virtio_pollfds(vm, p + 1 + nin, VIRT_IO_FDS);

    if (uart_deadline < deadline)
        deadline = uart_deadline;
    if (rtc_deadline < deadline)
        deadline = rtc_deadline;
    if (io_deadline < deadline)
        deadline = io_deadline;
    if (deadline != UINT64_MAX) {
        now = gw_now_ns();
        if (deadline <= now)
            return;
        ts.tv_sec = (time_t)((deadline - now) / 1000000000ull);
        ts.tv_nsec = (long)((deadline - now) % 1000000000ull);
        tsp = &ts;
    }
    if (ppoll(p, (nfds_t)(1 + nin + nio), tsp, NULL) > 0) {
        if (p[0].revents & POLLIN)
            while (read(vm->wake_fd, &drain, sizeof(drain)) > 0)
                ;
        virt_serial_poll(vm, p + 1, nin);
        virt_serial_pump(vm);
    }
    if (nio || io_deadline != UINT64_MAX)
        virt_io_poll(vm, gw_now_ns(), true);
}

/* Bring device-driven interrupt lines up to date. */
static void virt_tick(struct virt *vm)
{
    uint64_t now = gw_now_ns();

    clint_update(vm->clint);
    virt_input_check(vm, now);
    virt_serial_pump(vm);
    uart_poll(vm->uart, now);
    goldfish_rtc_poll(vm->rtc);
    virt_io_poll(vm, now, false);
}

/* Act on pending requests.  Returns -1 to keep running, else an exit status. */
static int virt_handle_requests(struct virt *vm)
{
    int req = atomic_exchange(&vm->requests, 0);
    char err[512];

    if (chardev_quit_requested(vm->serial))
        return 0; /* Ctrl-A x */
    if (req & VIRT_REQ_STOP) {
        gw_log("terminating on signal %d", atomic_load(&vm->stop_signal));
        return 0;
    }
    if (req & VIRT_REQ_POWEROFF)
        return (int)vm->poweroff_code;
    if (req & VIRT_REQ_RESET) {
        if (vm->cfg.no_reboot)
            return 0;
        if (virt_reset(vm, err, sizeof(err)) < 0) {
            gw_log("reset failed: %s", err);
            return 1;
        }
    }
    return -1;
}

int virt_run(struct virt *vm)
{
    for (;;) {
        bool ran = false;
        int status;

        status = virt_handle_requests(vm);
        if (status >= 0)
            return status;
        virt_tick(vm);
        for (unsigned i = 0; i < vm->nharts; i++) {
            struct rv_hart *h = vm->harts[i];

            if (vm->hart_wfi[i]) {
                if (!rv_hart_irq_pending(h))
                    continue;
                vm->hart_wfi[i] = false;
            }
            ran = true;
            switch (rv_hart_run(h, VIRT_SLICE_INSNS)) {
            case RV_EXIT_WFI: vm->hart_wfi[i] = true; break;
            case RV_EXIT_FATAL: gw_log("guest error: %s", rv_hart_error(h)); return 1;
            default: /* budget used up, or a request: looked at below */ break;
            }
            if (atomic_load(&vm->requests))
                break;
            if (vm->nharts > 1)
                virt_tick(vm);
        }
        if (!ran && !atomic_load(&vm->requests))
            virt_sleep(vm);
    }
}
