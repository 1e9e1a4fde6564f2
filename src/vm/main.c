/*
 * godwit-vm: run one RISC-V virt machine, QEMU-style command line.
 * Kept thin: parsing lives in machine/cmdline.c, the board in machine/virt.c.
 * Signals (INT, TERM, HUP) are taken by a dedicated thread with sigwait()
 * and turned into a clean stop of the run loop.  GODWIT_TRACE=traps prints
 * every trap the harts take to stderr (see docs/virt.md).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "machine/cmdline.h"
#include "machine/virt.h"

struct sigthread {
    sigset_t set;
    struct virt *vm;
};

static void *signal_thread(void *arg)
{
    struct sigthread *st = arg;
    int sig;

    for (;;) {
        if (sigwait(&st->set, &sig) == 0)
            virt_request_stop(st->vm, sig);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct virt_config cfg;
    struct sigthread st;
    pthread_t tid;
    struct virt *vm;
    char err[512];
    int ret, status;

    gw_log_set_prog("godwit-vm");
    ret = cmdline_parse(argc, argv, &cfg, stdout, err, sizeof(err));
    if (ret < 0) {
        gw_log("%s", err);
        return 1;
    }
    if (ret == CMDLINE_DONE)
        return 0;
    if (getenv("GODWIT_TRACE") &&
        virt_trace_parse(getenv("GODWIT_TRACE"), &cfg.trace, err, sizeof(err)) < 0) {
        gw_log("%s", err);
        return 1;
    }

    /* A closed stdout must not kill the VM: the serial backend drops output. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGTERM);
    sigaddset(&st.set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &st.set, NULL);

    /* A raw terminal is put back even if we die of a fatal signal. */
    chardev_install_tty_guard();
    vm = virt_new(&cfg, err, sizeof(err));
    if (!vm) {
        gw_log("%s", err);
        return 1;
    }
    if (cfg.dumpdtb) {
        /* As QEMU: write the device tree the guest would get, then exit. */
        ret = virt_dump_dtb(vm, cfg.dumpdtb, err, sizeof(err));
        if (ret < 0)
            gw_log("%s", err);
        else
            gw_log("info: dtb dumped to %s. Exiting.", cfg.dumpdtb);
        virt_free(vm);
        return ret < 0 ? 1 : 0;
    }
    st.vm = vm;
    ret = pthread_create(&tid, NULL, signal_thread, &st);
    if (ret) {
        gw_log("cannot start the signal thread: %s", strerror(ret));
        virt_free(vm);
        return 1;
    }
    status = virt_run(vm);
    pthread_cancel(tid);
    pthread_join(tid, NULL);
    virt_free(vm);
    return status;
}
