/*
 * Goldfish RTC at 0x101000 on the virt board (Linux: rtc-goldfish): a
 * nanosecond wall clock with one alarm.  Registers are 32-bit (guests may
 * use 8-byte accesses, which the bus splits), region size 0x24 as on QEMU:
 *   0x00 TIME_LOW      read: low half, latches the high half; write: set low
 *   0x04 TIME_HIGH     read: the latched high half; write: set high
 *   0x08 ALARM_LOW     write: set low half and arm the alarm
 *   0x0c ALARM_HIGH    write: set high half
 *   0x10 IRQ_ENABLED   bit 0
 *   0x14 CLEAR_ALARM   write: disarm
 *   0x18 ALARM_STATUS  1 while armed
 *   0x1c CLEAR_INTERRUPT write: drop the pending interrupt
 * Time is host CLOCK_REALTIME plus an offset the guest changes by writing
 * TIME_*; the offset survives a system reset, the alarm state does not.
 * The interrupt line (level = pending && enabled) goes to the PLIC later.
 */
#ifndef GODWIT_DEVICES_GOLDFISH_RTC_H
#define GODWIT_DEVICES_GOLDFISH_RTC_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/bus.h"
#include "state/state_buf.h"

#define GOLDFISH_RTC_SIZE 0x24

/* Guest-visible state. */
struct goldfish_rtc_state {
    uint64_t tick_offset; /* ns added to host realtime (mod 2^64) */
    uint64_t alarm_next;  /* ns, guest clock */
    uint32_t time_high;   /* latched by a TIME_LOW read */
    uint8_t alarm_running;
    uint8_t irq_pending;
    uint8_t irq_enabled;
};

struct goldfish_rtc_host {
    void *opaque;
    uint64_t (*realtime_ns)(void *opaque);     /* NULL = CLOCK_REALTIME */
    uint64_t (*monotonic_ns)(void *opaque);    /* NULL = gw_now_ns */
    void (*set_irq)(void *opaque, bool level); /* may be NULL */
};

struct goldfish_rtc {
    struct goldfish_rtc_state st;
    struct goldfish_rtc_host host;
    bool irq_level;
};

struct goldfish_rtc *goldfish_rtc_new(const struct goldfish_rtc_host *host);
void goldfish_rtc_free(struct goldfish_rtc *r);

/* System reset: alarm and interrupt state cleared, the clock kept. */
void goldfish_rtc_reset(struct goldfish_rtc *r);

/* Current guest time in ns. */
uint64_t goldfish_rtc_time(const struct goldfish_rtc *r);

/* Fire the alarm if due. */
void goldfish_rtc_poll(struct goldfish_rtc *r);

/* Monotonic host ns of the armed alarm, or UINT64_MAX. */
uint64_t goldfish_rtc_next_deadline(const struct goldfish_rtc *r);

/* Bus callbacks (opaque = struct goldfish_rtc *); map with sizes 4..8, impl 4. */
extern const struct bus_ops goldfish_rtc_ops;

/* State: registers, alarm, interrupt state and the guest's offset from the
 * host's wall clock (the RTC keeps showing real time after a restore, as
 * QEMU's does). */
#define GOLDFISH_RTC_STATE_VERSION 1
void goldfish_rtc_save(const struct goldfish_rtc *r, struct state_buf *b);
int goldfish_rtc_load(struct goldfish_rtc *r, struct state_buf *b, unsigned version) gw_must_check;

#endif
