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
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "machine/virt_int.h"

#define VIRT_SLICE_INSNS   10000
#define VIRT_WAKE_INSNS    256        /* the first slice after a WFI: see virt_run */
#define VIRT_INPUT_POLL_NS 1000000ull /* look for console input every 1 ms while running */
#define VIRT_IO_POLL_NS    1000000ull /* and give devices' host I/O a turn as often */
#define VIRT_IO_FDS        32         /* device fds the sleep waits on, at most */
#define VIRT_QMP_POLL_NS   1000000ull /* serve QMP every 1 ms while running */
#define VIRT_QMP_FDS       (QMP_MAX_CLIENTS + 1)

static const char *const virt_runstate_names[VIRT_RS_COUNT] = {
    [VIRT_RS_PRELAUNCH] = "prelaunch",
    [VIRT_RS_RUNNING] = "running",
    [VIRT_RS_PAUSED] = "paused",
    [VIRT_RS_INMIGRATE] = "inmigrate",
    [VIRT_RS_FINISH_MIGRATE] = "finish-migrate",
    [VIRT_RS_POSTMIGRATE] = "postmigrate",
    [VIRT_RS_SHUTDOWN] = "shutdown",
    [VIRT_RS_INTERNAL_ERROR] = "internal-error",
};

const char *virt_runstate_name(enum virt_runstate rs)
{
    return rs < VIRT_RS_COUNT ? virt_runstate_names[rs] : "unknown";
}

void virt_set_runstate(struct virt *vm, enum virt_runstate rs)
{
    vm->runstate = rs;
}

void virt_pause(struct virt *vm, enum virt_runstate rs)
{
    bool was_running = vm->runstate == VIRT_RS_RUNNING;

    /* Guest time stands still while the harts do (QEMU's virtual clock):
     * a paused guest sees no jump when it continues. */
    if (was_running)
        clint_freeze(vm->clint, true);
    vm->runstate = rs;
    if (was_running)
        virt_event(vm, "STOP", NULL);
}

void virt_resume(struct virt *vm)
{
    if (vm->runstate == VIRT_RS_RUNNING)
        return;
    clint_freeze(vm->clint, false);
    vm->runstate = VIRT_RS_RUNNING;
    virt_event(vm, "RESUME", NULL);
}

/* Serve QMP clients (never blocks). */
static void virt_qmp_serve(struct virt *vm)
{
    if (vm->qmp)
        qmp_server_poll(vm->qmp);
}

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

/* Sleep until the next device deadline, console input, device I/O, a
 * kick (virt_kick), or until (host ns; UINT64_MAX: no such bound). */
static void virt_sleep(struct virt *vm, uint64_t until)
{
    uint64_t deadline = clint_next_deadline(vm->clint), now;
    uint64_t uart_deadline = uart_next_deadline(vm->uart);
    uint64_t rtc_deadline = goldfish_rtc_next_deadline(vm->rtc);
    uint64_t io_deadline = virt_virtio_next_deadline(vm);
    uint64_t announce_deadline = virt_announce_next_deadline(vm);
    uint64_t agent_deadline = virt_agent_next_deadline(vm);
    struct pollfd p[3 + VIRT_IO_FDS + VIRT_QMP_FDS] = {{.fd = vm->wake_fd, .events = POLLIN}};
    struct timespec ts, *tsp = NULL;
    uint64_t drain;
    int nin = chardev_pollfds(vm->serial, p + 1, 2);
    int nio = virt_virtio_pollfds(vm, p + 1 + nin, VIRT_IO_FDS);
    int nqmp = vm->qmp ? qmp_server_pollfds(vm->qmp, p + 1 + nin + nio, VIRT_QMP_FDS) : 0;

    if (uart_deadline < deadline)
        deadline = uart_deadline;
    if (rtc_deadline < deadline)
        deadline = rtc_deadline;
    if (io_deadline < deadline)
        deadline = io_deadline;
    if (announce_deadline < deadline)
        deadline = announce_deadline;
    if (agent_deadline < deadline)
        deadline = agent_deadline;
    if (until < deadline)
        deadline = until;
    if (deadline != UINT64_MAX) {
        now = gw_now_ns();
        if (deadline <= now)
            return;
        ts.tv_sec = (time_t)((deadline - now) / 1000000000ull);
        ts.tv_nsec = (long)((deadline - now) % 1000000000ull);
        tsp = &ts;
    }
    if (ppoll(p, (nfds_t)(1 + nin + nio + nqmp), tsp, NULL) > 0) {
        if (p[0].revents & POLLIN)
            while (read(vm->wake_fd, &drain, sizeof(drain)) > 0)
                ;
        virt_serial_poll(vm, p + 1, nin);
        virt_serial_pump(vm);
        for (int i = 0; i < nqmp; i++)
            if (p[1 + nin + nio + i].revents) {
                virt_qmp_serve(vm);
                break;
            }
    }
    if (nio || io_deadline != UINT64_MAX)
        virt_io_poll(vm, gw_now_ns(), true);
}

/*
 * Not running: wait for QMP, a kick (a migration job, a signal) or a
 * timeout, touching no device.  Console input stays buffered in the
 * chardev until the harts run again.
 */
static void virt_idle(struct virt *vm)
{
    struct pollfd p[1 + VIRT_QMP_FDS] = {{.fd = vm->wake_fd, .events = POLLIN}};
    int nqmp = vm->qmp ? qmp_server_pollfds(vm->qmp, p + 1, VIRT_QMP_FDS) : 0;
    uint64_t drain, now = gw_now_ns(), agent_deadline = virt_agent_next_deadline(vm);
    int wait_ms = 100;

    /* requests to the agent that waited when the VM stopped still end in time */
    if (agent_deadline <= now)
        wait_ms = 0;
    else if (agent_deadline - now < 100000000ull)
        wait_ms = (int)((agent_deadline - now + 999999) / 1000000);
    if (poll(p, (nfds_t)(1 + nqmp), wait_ms) > 0 && (p[0].revents & POLLIN))
        while (read(vm->wake_fd, &drain, sizeof(drain)) > 0)
            ;
    virt_agent_poll(vm, gw_now_ns());
    virt_qmp_serve(vm);
}

/* Bring device-driven interrupt lines up to date. */
static void virt_tick(struct virt *vm)
{
    uint64_t now = gw_now_ns();

    if (vm->qmp && now - vm->last_qmp_poll >= VIRT_QMP_POLL_NS) {
        vm->last_qmp_poll = now;
        virt_qmp_serve(vm);
    }

    clint_update(vm->clint);
    virt_input_check(vm, now);
    virt_serial_pump(vm);
    uart_poll(vm->uart, now);
    goldfish_rtc_poll(vm->rtc);
    virt_announce_poll(vm, now);
    virt_agent_poll(vm, now);
    virt_io_poll(vm, now, false);
}

/* Act on pending requests.  Returns -1 to keep running, else an exit status. */
static int virt_handle_requests(struct virt *vm)
{
    int req = atomic_exchange(&vm->requests, 0);
    char err[512];

    if (chardev_quit_requested(vm->serial)) {
        vm->shutdown_cause = VIRT_REQ_QUIT; /* Ctrl-A x */
        return 0;
    }
    if (req & VIRT_REQ_STOP) {
        gw_log("terminating on signal %d", atomic_load(&vm->stop_signal));
        vm->shutdown_cause = VIRT_REQ_STOP;
        return 0;
    }
    if (req & VIRT_REQ_QUIT) {
        vm->shutdown_cause = VIRT_REQ_QUIT;
        return 0;
    }
    if (req & VIRT_REQ_POWEROFF) {
        vm->shutdown_cause = VIRT_REQ_POWEROFF;
        return (int)vm->poweroff_code;
    }
    if (req & VIRT_REQ_RESET) {
        if (vm->cfg.no_reboot) {
            vm->shutdown_cause = VIRT_REQ_RESET;
            return 0;
        }
        if (virt_reset(vm, err, sizeof(err)) < 0) {
            gw_log("reset failed: %s", err);
            return 1;
        }
        virt_event(vm, "RESET", json_pack("{s:b, s:s}", "guest", 1, "reason", "guest-reset"));
    }
    if (req & VIRT_REQ_FAIL) {
        vm->shutdown_cause = VIRT_REQ_FAIL;
        return 1;
    }
    if (req & VIRT_REQ_MIG)
        virt_migration_poll(vm);
    return -1;
}

/* The SHUTDOWN event QEMU sends on the way out, and the last QMP output. */
static void virt_shutdown(struct virt *vm)
{
    static const struct {
        unsigned cause;
        bool guest;
        const char *reason;
    } causes[] = {
        {VIRT_REQ_POWEROFF, true, "guest-shutdown"},
        {VIRT_REQ_RESET, true, "guest-reset"},
        {VIRT_REQ_QUIT, false, "host-qmp-quit"},
        {VIRT_REQ_STOP, false, "host-signal"},
    };

    virt_migration_fini(vm);
    if (!vm->qmp)
        return;
    virt_agent_cancel(vm, "the VM is shutting down");
    for (size_t i = 0; i < GW_ARRAY_SIZE(causes); i++)
        if (vm->shutdown_cause == causes[i].cause)
            virt_event(
                vm, "SHUTDOWN",
                json_pack("{s:b, s:s}", "guest", causes[i].guest, "reason", causes[i].reason));
    qmp_server_flush(vm->qmp, 1000);
}

/* Where the run starts: an incoming state, -S, or running. */
static int virt_start(struct virt *vm)
{
    char err[512];

    if (vm->runstate == VIRT_RS_INMIGRATE)
        return -1;          /* tcp:, unix:, defer since virt_new: the loop waits in inmigrate */
    if (vm->cfg.incoming) { /* file: */
        if (virt_incoming_begin(vm, vm->cfg.incoming, err, sizeof(err)) < 0) {
            gw_log("%s", err);
            return 1;
        }
        return -1;
    }
    if (vm->cfg.start_paused) {
        clint_freeze(vm->clint, true);
        vm->runstate = VIRT_RS_PRELAUNCH;
    } else {
        vm->runstate = VIRT_RS_RUNNING;
    }
    return -1;
}

int virt_run(struct virt *vm)
{
    int status = virt_start(vm);

    if (status >= 0)
        return status;
    for (;;) {
        bool ran = false;

        status = virt_handle_requests(vm);
        if (status >= 0) {
            virt_shutdown(vm);
            return status;
        }
        if (vm->runstate != VIRT_RS_RUNNING) {
            virt_idle(vm);
            continue;
        }
        virt_tick(vm);
        virt_throttle_begin(vm, gw_now_ns());
        for (unsigned i = 0; i < vm->nharts; i++) {
            struct rv_hart *h = vm->harts[i];
            uint64_t budget = VIRT_SLICE_INSNS, start = 0;

            /* a migration's dirty-limit holds this hart back for now */
            if (vm->throttle.active && virt_throttle_held(vm, i, gw_now_ns()))
                continue;
            if (vm->hart_wfi[i]) {
                if (!rv_hart_irq_pending(h))
                    continue;
                vm->hart_wfi[i] = false;
                /*
                 * A hart leaving WFI was usually woken by another hart (an
                 * IPI, or a flag it polls between WFIs) that may be halfway
                 * through the protocol that woke it.  On hardware and QEMU
                 * both go on at once; here the other hart stands still
                 * until this slice ends, so the woken hart gets a short
                 * one first.  OpenSBI 1.1 needs it: sbi_hsm_hart_start()
                 * sets START_PENDING before it writes the start address
                 * (fixed in OpenSBI 1.3, e8e9ed37), and the secondary
                 * polls that state in a WFI loop that a stale MSIP makes
                 * return at once.  If hart 0's slice ended between the
                 * two, hart 1 ran its whole warm boot (about 5,200
                 * instructions) in one slice and jumped to the old
                 * address, the kernel entry, as a second boot hart: Linux
                 * hung in about 1 of 40 boots with -smp 2.
                 */
                budget = VIRT_WAKE_INSNS;
            }
            ran = true;
            if (vm->throttle.active) {
                budget = virt_throttle_budget(vm, i, budget);
                start = gw_now_ns();
            }
            switch (rv_hart_run(h, budget)) {
            case RV_EXIT_WFI: vm->hart_wfi[i] = true; break;
            case RV_EXIT_FATAL:
                gw_log("guest error: %s", rv_hart_error(h));
                virt_pause(vm, VIRT_RS_INTERNAL_ERROR);
                virt_shutdown(vm);
                return 1;
            default: /* budget used up, or a request: looked at below */ break;
            }
            if (vm->throttle.active)
                virt_throttle_slice(vm, i, start, gw_now_ns());
            if (atomic_load(&vm->requests) || vm->runstate != VIRT_RS_RUNNING)
                break;
            if (vm->nharts > 1)
                virt_tick(vm);
        }
        if (!atomic_load(&vm->requests)) {
            /* a throttled guest sleeps here, never spins: auto-converge's
             * share of the time, or until a held-back hart may go on */
            uint64_t now = gw_now_ns(), until = virt_throttle_wake(vm, ran, now);

            if (until != UINT64_MAX) {
                virt_sleep(vm, until);
                virt_throttle_slept(vm, gw_now_ns() - now);
            } else if (!ran) {
                virt_sleep(vm, UINT64_MAX);
            }
        }
    }
}
