/* Goldfish RTC; see goldfish_rtc.h.  Behaviour checked against QEMU 7.2. */
#include "devices/goldfish_rtc.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

enum {
    RTC_TIME_LOW = 0x00,
    RTC_TIME_HIGH = 0x04,
    RTC_ALARM_LOW = 0x08,
    RTC_ALARM_HIGH = 0x0c,
    RTC_IRQ_ENABLED = 0x10,
    RTC_CLEAR_ALARM = 0x14,
    RTC_ALARM_STATUS = 0x18,
    RTC_CLEAR_INTERRUPT = 0x1c,
};

static uint64_t rtc_realtime(const struct goldfish_rtc *r)
{
    struct timespec ts;

    if (r->host.realtime_ns)
        return r->host.realtime_ns(r->host.opaque);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rtc_monotonic(const struct goldfish_rtc *r)
{
    return r->host.monotonic_ns ? r->host.monotonic_ns(r->host.opaque) : gw_now_ns();
}

uint64_t goldfish_rtc_time(const struct goldfish_rtc *r)
{
    return rtc_realtime(r) + r->st.tick_offset;
}

static void rtc_update_irq(struct goldfish_rtc *r)
{
    bool level = r->st.irq_pending && r->st.irq_enabled;

    if (level != r->irq_level) {
        r->irq_level = level;
        if (r->host.set_irq)
            r->host.set_irq(r->host.opaque, level);
    }
}

void goldfish_rtc_poll(struct goldfish_rtc *r)
{
    if (r->st.alarm_running && goldfish_rtc_time(r) >= r->st.alarm_next) {
        r->st.alarm_running = 0;
        r->st.irq_pending = 1;
        rtc_update_irq(r);
    }
}

uint64_t goldfish_rtc_next_deadline(const struct goldfish_rtc *r)
{
    uint64_t now_rtc, now_mono, wait;

    if (!r->st.alarm_running)
        return UINT64_MAX;
    now_rtc = goldfish_rtc_time(r);
    now_mono = rtc_monotonic(r);
    if (r->st.alarm_next <= now_rtc)
        return now_mono;
    wait = r->st.alarm_next - now_rtc;
    return wait > UINT64_MAX - now_mono ? UINT64_MAX : now_mono + wait;
}

void goldfish_rtc_reset(struct goldfish_rtc *r)
{
    r->st.alarm_next = 0;
    r->st.alarm_running = 0;
    r->st.irq_pending = 0;
    r->st.irq_enabled = 0;
    rtc_update_irq(r);
}

struct goldfish_rtc *goldfish_rtc_new(const struct goldfish_rtc_host *host)
{
    struct goldfish_rtc *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    if (host)
        r->host = *host;
    return r;
}

void goldfish_rtc_free(struct goldfish_rtc *r)
{
    free(r);
}

static int rtc_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    struct goldfish_rtc *r = opaque;
    uint64_t t;

    (void)size;
    switch (off) {
    case RTC_TIME_LOW:
        t = goldfish_rtc_time(r);
        r->st.time_high = (uint32_t)(t >> 32);
        *val = (uint32_t)t;
        break;
    case RTC_TIME_HIGH: *val = r->st.time_high; break;
    case RTC_ALARM_LOW: *val = (uint32_t)r->st.alarm_next; break;
    case RTC_ALARM_HIGH: *val = (uint32_t)(r->st.alarm_next >> 32); break;
    case RTC_IRQ_ENABLED: *val = r->st.irq_enabled; break;
    case RTC_ALARM_STATUS:
        goldfish_rtc_poll(r);
        *val = r->st.alarm_running;
        break;
    default: *val = 0; break;
    }
    return 0;
}

static void rtc_set_time(struct goldfish_rtc *r, uint64_t t)
{
    r->st.tick_offset = t - rtc_realtime(r);
}

static int rtc_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct goldfish_rtc *r = opaque;
    uint64_t t;

    (void)size;
    val &= 0xffffffffull;
    switch (off) {
    case RTC_TIME_LOW:
        t = goldfish_rtc_time(r);
        rtc_set_time(r, (t & ~0xffffffffull) | val);
        break;
    case RTC_TIME_HIGH:
        t = goldfish_rtc_time(r);
        rtc_set_time(r, (t & 0xffffffffull) | (val << 32));
        break;
    case RTC_ALARM_LOW:
        r->st.alarm_next = (r->st.alarm_next & ~0xffffffffull) | val;
        r->st.alarm_running = 1;
        goldfish_rtc_poll(r);
        break;
    case RTC_ALARM_HIGH: r->st.alarm_next = (r->st.alarm_next & 0xffffffffull) | (val << 32); break;
    case RTC_IRQ_ENABLED:
        r->st.irq_enabled = val & 1;
        rtc_update_irq(r);
        break;
    case RTC_CLEAR_ALARM: r->st.alarm_running = 0; break;
    case RTC_CLEAR_INTERRUPT:
        r->st.irq_pending = 0;
        rtc_update_irq(r);
        break;
    default: break;
    }
    return 0;
}

const struct bus_ops goldfish_rtc_ops = {rtc_read, rtc_write};

/* ---- state (docs/state.md) ---------------------------------------------------
 * Version 1: u64 tick_offset alarm_next, u32 time_high, u8 alarm_running
 * irq_pending irq_enabled.  The offset to the host's wall clock is what
 * is kept, so the guest's clock shows real time after a restore (QEMU's
 * goldfish RTC does the same); the alarm is in guest time, so it fires
 * when that clock reaches it. */

void goldfish_rtc_save(const struct goldfish_rtc *r, struct state_buf *b)
{
    state_put_u64(b, r->st.tick_offset);
    state_put_u64(b, r->st.alarm_next);
    state_put_u32(b, r->st.time_high);
    state_put_u8(b, r->st.alarm_running);
    state_put_u8(b, r->st.irq_pending);
    state_put_u8(b, r->st.irq_enabled);
}

int goldfish_rtc_load(struct goldfish_rtc *r, struct state_buf *b, unsigned version)
{
    struct goldfish_rtc_state st;

    if (version == 0 || version > GOLDFISH_RTC_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "goldfish-rtc: state version %u, this build knows up to %u",
                       version, GOLDFISH_RTC_STATE_VERSION);
        return -EINVAL;
    }
    st.tick_offset = state_get_u64(b);
    st.alarm_next = state_get_u64(b);
    st.time_high = state_get_u32(b);
    st.alarm_running = state_get_u8(b);
    st.irq_pending = state_get_u8(b);
    st.irq_enabled = state_get_u8(b);
    if (!state_buf_error(b) && (st.alarm_running > 1 || st.irq_pending > 1 || st.irq_enabled > 1))
        state_buf_fail(b, -EINVAL, "goldfish-rtc: flags %u/%u/%u are not booleans",
                       st.alarm_running, st.irq_pending, st.irq_enabled);
    if (state_buf_error(b))
        return -EINVAL;
    r->st = st;
    rtc_update_irq(r);
    if (r->host.set_irq) /* whatever level the PLIC latched */
        r->host.set_irq(r->host.opaque, r->irq_level);
    return 0;
}
