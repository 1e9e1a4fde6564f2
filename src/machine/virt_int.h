/*
 * Private parts of the virt board shared by virt.c (construction, reset,
 * reset ROM) and virt_run.c (the loop that runs the harts).
 */
#ifndef GODWIT_MACHINE_VIRT_INT_H
#define GODWIT_MACHINE_VIRT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "devices/clint.h"
#include "devices/goldfish_rtc.h"
#include "devices/pcie_host.h"
#include "devices/plic.h"
#include "devices/sifive_test.h"
#include "devices/uart16550.h"
#include "hart/hart.h"
#include "mem/bus.h"
#include "machine/elf.h"
#include "machine/virt_boot.h"
#include "machine/virt.h"
#include "common/keyval.h"
#include "mem/gmem.h"
#include "migration/migration.h"
#include "migration/mig_throttle.h"
#include "net/net.h"
#include "qmp/qmp.h"
#include "virtio/virtio_mmio.h"

/* Requests to the run loop (bits of virt.requests). */
enum {
    VIRT_REQ_POWEROFF = 1 << 0, /* guest powered off; status in poweroff_code */
    VIRT_REQ_RESET = 1 << 1,    /* guest asked for a system reset */
    VIRT_REQ_STOP = 1 << 2,     /* the host asked us to stop (signal) */
    VIRT_REQ_QUIT = 1 << 3,     /* QMP quit */
    VIRT_REQ_MIG = 1 << 5,      /* a migration job wants the loop (mig_out_poll/mig_in_poll) */
    VIRT_REQ_FAIL = 1 << 7,     /* exit with status 1 (an incoming migration failed) */
};

/* Saved components of the machine (virt_state.c's table). */
#define VIRT_STATE_COMPONENTS 9

/*
 * Run states, as QEMU names them (query-status).  Only RUNNING executes
 * the harts and services the devices; in every other state the loop
 * serves QMP alone, so a migration job may read or load the devices while
 * the loop is "parked" (see virt_migration.c).
 */
enum virt_runstate {
    VIRT_RS_PRELAUNCH, /* -S: never ran yet */
    VIRT_RS_RUNNING,
    VIRT_RS_PAUSED,         /* QMP stop, or -S after an incoming migration */
    VIRT_RS_INMIGRATE,      /* waiting for / loading an incoming state */
    VIRT_RS_FINISH_MIGRATE, /* stopped for the final part of an outgoing migration */
    VIRT_RS_POSTMIGRATE,    /* the state went out: stays stopped (cont resumes) */
    VIRT_RS_SHUTDOWN,       /* the guest powered off */
    VIRT_RS_INTERNAL_ERROR, /* a hart hit a fatal error */
    VIRT_RS_COUNT,
};

/* QEMU's name of a run state ("running", "finish-migrate", ...). */
const char *virt_runstate_name(enum virt_runstate rs);

struct virt;

/* A QMP request waiting for the guest agent's answer (virt_agent.c). */
enum virt_agent_kind { VIRT_AGENT_PING, VIRT_AGENT_SETTIME };
#define VIRT_AGENT_REQS (QMP_MAX_CLIENTS + 1) /* one per client, and the feed() client */
struct virt_agent_req {
    uint64_t ticket; /* the deferred QMP reply; 0: slot free */
    uint64_t tag;    /* the device's tag of the command (vcon_agent_request) */
    enum virt_agent_kind kind;
    unsigned timeout_ms;
    uint64_t sent_ns, deadline_ns; /* host monotonic ns */
};

/* What a virtio-mmio slot's interrupt callback needs. */
struct virt_virtio_slot {
    struct virt *vm;
    unsigned index; /* 0..VIRT_VIRTIO_COUNT-1: IRQ VIRT_VIRTIO_IRQ + index */
};

/* Layout of the reset ROM (offsets from VIRT_MROM_BASE). */
#define VIRT_MROM_START_ADDR 0x18          /* dword: where the trampoline jumps */
#define VIRT_MROM_FDT_ADDR   0x20          /* dword: a1 (device tree) */
#define VIRT_MROM_FW_DYN     0x28          /* struct fw_dynamic_info (OpenSBI) */
#define VIRT_FW_DYN_MAGIC    0x4942534full /* "OSBI" */
#define VIRT_FW_DYN_VERSION  2
#define VIRT_FW_DYN_MODE_S   1

/* ---- announce timers (virt_net.c): host plumbing, never migrated ------------ */

#define VIRT_ANNOUNCE_TIMERS 4  /* announce-self ids running at once */
#define VIRT_ANNOUNCE_ID_MAX 64 /* bytes of an id, with the NUL */

/* One announce-self run (QEMU keeps one timer per id, "" without one). */
struct virt_announce_timer {
    bool active;
    char id[VIRT_ANNOUNCE_ID_MAX];
    uint32_t nics;                        /* bit i: the NIC in vm->virtio[i] */
    unsigned initial_ms, max_ms, step_ms; /* gap after the first round, cap, growth */
    unsigned rounds, left;                /* asked for, still to run */
    uint64_t due;                         /* host ns (gw_now_ns) of the next round */
};

struct virt_announce {
    struct virt_announce_timer timers[VIRT_ANNOUNCE_TIMERS];
    uint64_t rounds;      /* rounds run, all timers */
    uint64_t rarps;       /* RARPs sent from the host side, all NICs */
    uint64_t guest_asked; /* times a guest driver was asked to announce itself */
};

/* Throttling (virt_throttle.c): host plumbing, never migrated. */
struct virt_hart_throttle {
    struct mig_throttle_bucket bucket; /* dirty-limit: bytes it may dirty */
    uint64_t seen;                     /* rv_hart_dirtied() at its last slice */
    uint64_t resume_ns;                /* held back until then (host ns; 0: not) */
    bool limited;                      /* over the limit lately: short slices */
    uint64_t held_ns;                  /* held back in all, ns */
    /* the period being measured (x-vcpu-dirty-limit-period long) */
    uint64_t win_start_ns, win_bytes, win_held_ns, win_run_ns;
    /* the last whole period: dirty rate (bytes/s), held back, ran (ns), dirtied */
    uint64_t rate_bps, last_held_ns, last_run_ns, last_bytes;
};
struct virt_throttle {
    struct mig_throttle_now now; /* what the migration asks (all zero: nothing) */
    bool active;
    int64_t debt_ns;   /* auto-converge: sleep the harts owe */
    uint64_t slept_ns; /* auto-converge: slept in all, ns */
    struct virt_hart_throttle hart[VIRT_MAX_HARTS];
};
/* Loop thread, once a pass over the harts: look at what the migration asks. */
void virt_throttle_begin(struct virt *vm, uint64_t now);
/* Hart i is held back by dirty-limit at now: skip it. */
bool virt_throttle_held(const struct virt *vm, unsigned i, uint64_t now);
/* Hart i's slice (instructions), budget unless the throttle wants it shorter. */
uint64_t virt_throttle_budget(const struct virt *vm, unsigned i, uint64_t budget);
/* Hart i ran a slice from start to end (host ns): account it. */
void virt_throttle_slice(struct virt *vm, unsigned i, uint64_t start, uint64_t end);
/* After a pass (ran: some hart ran): host ns until which the loop should
 * sleep for the throttle (UINT64_MAX: no need). */
uint64_t virt_throttle_wake(const struct virt *vm, bool ran, uint64_t now);
/* The loop slept slept_ns of what virt_throttle_wake asked. */
void virt_throttle_slept(struct virt *vm, uint64_t slept_ns);

struct virt {
    struct virt_config cfg;
    struct gmem *mem;
    struct bus bus;
    struct rv_hart_env env; /* shared by every hart; lives as long as they do */
    unsigned nharts;
    struct rv_hart **harts;
    bool *hart_wfi; /* hart is asleep in WFI until an interrupt is pending */
    struct uart *uart;
    struct clint *clint;
    struct plic *plic;
    struct sifive_test *test;
    struct goldfish_rtc *rtc;
    struct pcie_host *pcie;
    struct chardev *serial;
    struct virtio_mmio virtio[VIRT_VIRTIO_COUNT]; /* the slots (dev NULL: empty) */
    struct virt_virtio_slot virtio_slot[VIRT_VIRTIO_COUNT];
    uint64_t last_virtio_poll;                 /* host ns of the last device poll */
    struct net_backend *netdev[VIRT_MAX_OPTS]; /* -netdev backends (virt_net.c) */
    bool netdev_used[VIRT_MAX_OPTS];           /* a NIC is attached to it */
    unsigned nnetdevs;
    unsigned nics_default_mac; /* NICs given QEMU's default MAC so far */
    uint8_t *mrom;             /* VIRT_MROM_SIZE bytes */
    /* Boot images (virt_boot.c), kept to copy them again on reset. */
    struct virt_blob fw, kern, initrd, fdt;
    struct elf_info fw_elf, kern_elf; /* where ELF images went */
    uint64_t kernel_entry;            /* fw_dynamic_info.next_addr */
    int wake_fd;                      /* eventfd: wakes the loop from its WFI sleep */
    uint64_t last_input_poll;         /* host ns of the last console input check */
    _Atomic int requests;             /* VIRT_REQ_* */
    _Atomic int stop_signal;
    unsigned poweroff_code;
    unsigned shutdown_cause; /* VIRT_REQ_* that ended the run (SHUTDOWN event) */

    /* control (virt_qmp.c, virt_migration.c) */
    enum virt_runstate runstate;
    struct qmp_server *qmp;
    uint64_t last_qmp_poll; /* host ns */
    struct mig_machine mm;  /* the board as the migration engine sees it */
    struct mig_out *mig;    /* the current or last outgoing migration, or NULL */
    struct mig_in *inc;     /* an incoming live migration, or NULL */
    struct mig_params mig_params;
    /* -object tls-creds-psk (virt_virtio.c), for the tls-creds parameter */
    struct virt_tls_creds {
        char id[128];
        char dir[512];
        bool server; /* endpoint=server (a destination's); else client */
    } tls_creds[VIRT_MAX_OPTS];
    unsigned ntls_creds;
    bool migrated_away; /* a live migration committed: the VM runs elsewhere now */
    /* what the loop did when it parked for a job */
    bool park_was_running;
    enum virt_runstate park_prev_runstate;
    /* components loaded so far (virt_state_load_component), a bit per instance */
    uint64_t load_seen[VIRT_STATE_COMPONENTS][(VIRT_MAX_HARTS + 63) / 64 + 1];

    /* guest agent requests (virt_agent.c): host plumbing, never migrated */
    struct virt_agent_req agent[VIRT_AGENT_REQS];
    uint64_t agent_next_tag;

    /* throttling for a live migration (virt_throttle.c) */
    struct virt_throttle throttle;

    /* announce (virt_net.c): runs only while the harts do */
    struct virt_announce announce;
};

/* ---- run states (virt_run.c) ------------------------------------------------ */

/* Stop the harts (RUNNING -> rs): time stands still, STOP event. */
void virt_pause(struct virt *vm, enum virt_runstate rs);
/* Run the harts again (-> RUNNING): time continues, RESUME event. */
void virt_resume(struct virt *vm);
/* Move between non-running states (no event). */
void virt_set_runstate(struct virt *vm, enum virt_runstate rs);

/* ---- QMP (virt_qmp.c) ----------------------------------------------------------- */

/* Start the -qmp server (0, or -errno with a message). */
int virt_qmp_init(struct virt *vm, char *err, size_t errlen) gw_must_check;
void virt_qmp_fini(struct virt *vm);
/* Emit an event if a QMP server runs (data stolen, may be NULL). */
void virt_event(struct virt *vm, const char *name, json_t *data);

/* ---- state (virt_state.c) ---------------------------------------------------------- */

/* The configuration text whose hash goes into a state header: the parts
 * of the machine a saved state depends on (RAM size, harts, ISA, devices
 * per slot).  Returns a malloc'ed string. */
char *virt_state_config_text(const struct virt *vm);
uint64_t virt_state_config_hash(const struct virt *vm);

/* The components (virt_state.c; the engine's save_components and load_*
 * ops): every component's section into s, the machine parked; a load
 * begins, takes one section at a time, and ends checking that each
 * component came exactly once (0, or -errno with the reason in err). */
int virt_state_save_components(struct virt *vm, struct state_stream *s);
void virt_state_load_begin(struct virt *vm);
int virt_state_load_component(struct virt *vm, const struct state_section *sec, struct state_buf *b,
                              char *err, size_t errlen);
int virt_state_load_end(struct virt *vm, char *err, size_t errlen);
/* XXH3 of RAM plus every component's saved state (x-godwit-state-hash). */
uint64_t virt_state_hash(struct virt *vm);

/* ---- migration (virt_migration.c): the board's side of the engine ------------------ */

/* Fill vm->mm (the ops, RAM, identity); virt_new calls it. */
void virt_migration_init(struct virt *vm);
/* Start an outgoing migration (QMP migrate); 0 or -errno + message. */
int virt_migrate_start(struct virt *vm, const char *uri, char *err, size_t errlen) gw_must_check;
/* True while an outgoing job runs. */
bool virt_migrate_active(const struct virt *vm);
/*
 * The one place an incoming migration starts (-incoming at startup, QMP
 * migrate-incoming): file: loads at once and the machine then runs (or
 * stays paused with -S); tcp:/unix: listen and load on a thread while the
 * loop serves QMP (state inmigrate); defer: wait for migrate-incoming.
 * 0, or -errno with a message (a file that failed to load leaves a
 * machine that must not run).
 */
int virt_incoming_begin(struct virt *vm, const char *uri, char *err, size_t errlen) gw_must_check;
/* The loop's side of both jobs (VIRT_REQ_MIG). */
void virt_migration_poll(struct virt *vm);
/* Cancel and wait for every job (before exit). */
void virt_migration_fini(struct virt *vm);

/* Set request bits, make every hart leave its slice and wake the loop
 * (any thread). */
void virt_post_request(struct virt *vm, int bits);

/* Reload the boot images and reset harts and devices, as a system reset does. */
int virt_reset(struct virt *vm, char *err, size_t errlen);

/* Wake the run loop if it sleeps (thread-safe).  A device thread that
 * raises an interrupt line must call it, or a hart asleep in WFI would only
 * notice at the next timer deadline. */
void virt_kick(struct virt *vm);

/*
 * Fill the reset ROM image: the trampoline jumps to start_addr with a1 =
 * fdt_addr; fw_dynamic_info.next_addr = next_addr.  virt_mrom_ops serve it
 * on the bus (opaque = the image): reads of any size, writes ignored.
 */
void virt_mrom_build(uint8_t *rom, size_t size, uint64_t start_addr, uint64_t fdt_addr,
                     uint64_t next_addr);
extern const struct bus_ops virt_mrom_ops;

/* Placeholders for devices not modelled yet (virt_stubs.c). */
extern const struct bus_ops virt_stub_flash_ops;

/*
 * virtio-mmio slots (virt_virtio.c).  init builds the devices the
 * command line asks for (-drive, -object, -device) into the slots, the
 * first -device in the last slot as on QEMU; 0 or -errno with a message.
 * The poll functions serve the devices' host I/O hooks from the run loop.
 */
int virt_virtio_init(struct virt *vm, char *err, size_t errlen) gw_must_check;
void virt_virtio_fini(struct virt *vm);
void virt_virtio_reset(struct virt *vm);
int virt_virtio_pollfds(struct virt *vm, struct pollfd *fds, int max);
void virt_virtio_poll(struct virt *vm);
uint64_t virt_virtio_next_deadline(struct virt *vm);

/*
 * Disk image locks (docs/virtio.md "Image locking"): every virtio-blk
 * image's, QEMU's way (common/image_lock.h).  A VM takes them when it is
 * about to run: at start, or with -incoming once the state is loaded
 * (before answering READY); a live migration's source hands them over
 * before its EOF and takes them back if the migration fails.
 *
 * lock: takes those not held, all or none; 0, or -EAGAIN / -errno with
 * "-drive id=ID: ..." naming the holder in err.  unlock: flushes every
 * writable image, then drops every lock (on a flush error it drops none:
 * -errno with a message).  reclaim: lock, retrying for up to
 * VIRT_DISKS_RECLAIM_MS while another process (a destination on its way
 * out) holds one; logs and returns -errno if that did not work.
 */
#define VIRT_DISKS_RECLAIM_MS 5000
int virt_disks_lock(struct virt *vm, char *err, size_t errlen) gw_must_check;
int virt_disks_unlock(struct virt *vm, char *err, size_t errlen) gw_must_check;
int virt_disks_reclaim(struct virt *vm) gw_must_check;

/*
 * Send one line to the guest agent (docs/virtio.md "Guest agent": e.g.
 * "powerdown") on the first virtio-serial port named org.godwit.agent.0:
 * vcon_agent_send()'s result (0, -EAGAIN: delivered when the guest posts a
 * buffer, -ENOTCONN: the guest has not opened the port, ...), or -ENODEV
 * if the machine has no such port.  Run-loop thread only.
 */
int virt_agent_send(struct virt *vm, const char *line);

/*
 * Agent requests that wait for an answer (virt_agent.c): the QMP handlers
 * of x-godwit-agent-ping and x-godwit-agent-set-time defer their reply;
 * virt_agent_answer is the device's hook (vcon_set_agent_hook);
 * virt_agent_poll fails requests past their deadline (call it as the loop
 * runs, running or not); virt_agent_next_deadline is the earliest deadline
 * (UINT64_MAX: none) for the loop's sleep.
 */
json_t *virt_qmp_agent_ping(void *opaque, json_t *args, struct qmp_error *err);
json_t *virt_qmp_agent_set_time(void *opaque, json_t *args, struct qmp_error *err);
void virt_agent_answer(void *opaque, uint64_t tag, const char *line);
void virt_agent_poll(struct virt *vm, uint64_t now);
/* Fail every request waiting for the agent with why (the VM exits). */
void virt_agent_cancel(struct virt *vm, const char *why);
uint64_t virt_agent_next_deadline(const struct virt *vm);

/*
 * Networking (virt_net.c): init opens every -netdev backend (0 or -errno
 * with a message); create_nic builds a -device virtio-net-device from its
 * properties (netdev=, mac=, id=); check_peers warns about netdevs no NIC
 * uses; fini frees the backends (after the devices).
 */
int virt_net_init(struct virt *vm, char *err, size_t errlen) gw_must_check;
struct virtio_dev *virt_net_create_nic(struct virt *vm, struct keyval *kv, const char *spec,
                                       char *err, size_t errlen);
void virt_net_check_peers(const struct virt *vm);
void virt_net_fini(struct virt *vm);
/* Live migration's frame forwarding (migration.h's net_* ops; docs/net.md,
 * "The switchover"): ports are netdev indexes; TAP backends with a NIC. */
struct mig_net_port;
unsigned virt_net_fwd_ports(struct virt *vm, struct mig_net_port *out, unsigned max);
long virt_net_fwd_take(struct virt *vm, unsigned port, uint8_t *buf, size_t cap);
void virt_net_fwd_requeue(struct virt *vm, unsigned port, const uint8_t *frame, size_t len);
int virt_net_fwd_inject(struct virt *vm, unsigned port, const uint8_t *frame, size_t len);
/* Live migration: the netdevs whose state travels (user), counted and by
 * index in -netdev order; loaded: the state is in and the VM is about to
 * run (deferred hostfwd rules bind); migrated_away: a live migration
 * committed, the host's side of every netdev is released. */
unsigned virt_net_migrating_count(const struct virt *vm);
struct net_backend *virt_net_migrating(struct virt *vm, unsigned i);
void virt_net_loaded(struct virt *vm);
void virt_net_migrated_away(struct virt *vm);

/*
 * Announce the VM's NICs on their networks (QEMU's announce-self), e.g.
 * right after a live migration's switchover so switches and peers learn at
 * once where the MACs are now: `rounds` rounds, the first at once, then
 * `initial` ms later, each gap growing by `step` ms up to `max` ms (QEMU's
 * defaults: 50, 550, 5, 100).  Each round makes every NIC (or those named
 * in ifaces, by -netdev/-device id; NULL/0 = all) send a RARP from the host
 * side, and asks the guest driver to announce itself too where it
 * negotiated VIRTIO_NET_F_GUEST_ANNOUNCE.  virt_announce_poll() runs due
 * rounds (the run loop calls it; now = gw_now_ns()), next_deadline says
 * when the next one is due (UINT64_MAX: none).
 */
struct virt_announce_params {
    unsigned initial_ms, max_ms, rounds, step_ms;
    const char *const *ifaces;
    unsigned nifaces;
    const char *id; /* a run with the same id replaces the running one; NULL = "" */
};
void virt_announce_params_default(struct virt_announce_params *p);
int virt_announce_start(struct virt *vm, const struct virt_announce_params *p, char *err,
                        size_t errlen) gw_must_check;
void virt_announce_poll(struct virt *vm, uint64_t now);
uint64_t virt_announce_next_deadline(const struct virt *vm);
/*
 * Limits (QEMU's announce migration parameters): initial and max 0..100000,
 * rounds 1..1000, step 1..10000 ms.  start fails with -EINVAL (a limit, an
 * id too long), -ENODEV (an interface the machine does not have) or -EBUSY
 * (VIRT_ANNOUNCE_TIMERS other ids running); the message names the culprit.
 * Run-loop thread only.  The first round runs at the loop's next tick; a
 * VM that is not running keeps its rounds until it runs (see docs/net.md).
 */
/* QMP announce-self handler (arguments as QEMU's AnnounceParameters). */
json_t *virt_qmp_announce_self(void *opaque, json_t *args, struct qmp_error *err);

#endif
