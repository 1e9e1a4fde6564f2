/*
 * PCIe host with an empty bus; see pcie_host.h.  Config space layout from
 * the PCI Local Bus spec 3.0 §6.1 (type 0 header); values as QEMU 7.2's
 * gpex host bridge reports them (read from a guest on qemu-system-riscv64).
 */
#include "devices/pcie_host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PCI_VENDOR_REDHAT    0x1b36
#define PCI_DEVICE_HOST      0x0008
#define PCI_CLASS_HOST       0x060000 /* bridge: host */
#define PCI_SUBSYS_VENDOR    0x1af4
#define PCI_SUBSYS_ID        0x1100
#define PCI_COMMAND_WRITABLE 0x0507 /* I/O, memory, bus master, SERR, INTx disable */
#define PCI_CONFIG_SIZE      0x100  /* conventional config space; beyond reads all-ones */

struct pcie_host *pcie_host_new(void)
{
    return calloc(1, sizeof(struct pcie_host));
}

void pcie_host_free(struct pcie_host *p)
{
    free(p);
}

void pcie_host_reset(struct pcie_host *p)
{
    memset(&p->st, 0, sizeof(p->st));
}

/* The 32-bit config register at dword-aligned offset reg of the bridge. */
static uint32_t pcie_bridge_dword(const struct pcie_host *p, unsigned reg)
{
    switch (reg) {
    case 0x00: return (uint32_t)PCI_DEVICE_HOST << 16 | PCI_VENDOR_REDHAT;
    case 0x04: return p->st.command;                 /* status reads 0 */
    case 0x08: return (uint32_t)PCI_CLASS_HOST << 8; /* revision 0 */
    case 0x0c: return p->st.cache_line;
    case 0x2c: return (uint32_t)PCI_SUBSYS_ID << 16 | PCI_SUBSYS_VENDOR;
    case 0x3c: return p->st.int_line; /* interrupt pin 0 */
    default: return 0;
    }
}

static bool pcie_is_bridge(uint64_t off)
{
    /* ECAM: bus[27:20] device[19:15] function[14:12] register[11:0] */
    return (off >> 12) == 0 && (off & 0xfff) < PCI_CONFIG_SIZE;
}

static int pcie_ecam_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    const struct pcie_host *p = opaque;
    unsigned shift = (unsigned)(off & 3) * 8;

    if (!pcie_is_bridge(off)) {
        *val = UINT64_MAX;
        return 0;
    }
    *val = pcie_bridge_dword(p, (unsigned)(off & 0xffc)) >> shift;
    if (size < 4)
        *val &= (1u << (size * 8)) - 1;
    return 0;
}

static int pcie_ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct pcie_host *p = opaque;
    unsigned reg = (unsigned)(off & 0xfff);

    if (!pcie_is_bridge(off))
        return 0;
    /* Byte-granular writes into the few writable fields. */
    for (unsigned i = 0; i < size; i++) {
        unsigned at = reg + i;
        uint8_t b = (uint8_t)(val >> (8 * i));
        switch (at) {
        case 0x04:
            p->st.command =
                (uint16_t)((p->st.command & 0xff00) | (b & (PCI_COMMAND_WRITABLE & 0xff)));
            break;
        case 0x05:
            p->st.command =
                (uint16_t)((p->st.command & 0x00ff) | ((b & (PCI_COMMAND_WRITABLE >> 8)) << 8));
            break;
        case 0x0c: p->st.cache_line = b; break;
        case 0x3c: p->st.int_line = b; break;
        default: break;
        }
    }
    return 0;
}

static int pcie_window_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    (void)opaque;
    (void)off;
    (void)size;
    *val = UINT64_MAX;
    return 0;
}

static int pcie_window_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    (void)opaque;
    (void)off;
    (void)size;
    (void)val;
    return 0;
}

const struct bus_ops pcie_host_ecam_ops = {pcie_ecam_read, pcie_ecam_write};
const struct bus_ops pcie_host_window_ops = {pcie_window_read, pcie_window_write};

/* ---- state (docs/state.md) ---------------------------------------------------
 * Version 1: u16 command, u8 cache_line, u8 int_line. */

void pcie_host_save(const struct pcie_host *p, struct state_buf *b)
{
    state_put_u16(b, p->st.command);
    state_put_u8(b, p->st.cache_line);
    state_put_u8(b, p->st.int_line);
}

int pcie_host_load(struct pcie_host *p, struct state_buf *b, unsigned version)
{
    struct pcie_host_state st;

    if (version == 0 || version > PCIE_HOST_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "pcie-host: state version %u, this build knows up to %u",
                       version, PCIE_HOST_STATE_VERSION);
        return -EINVAL;
    }
    st.command = state_get_u16(b);
    st.cache_line = state_get_u8(b);
    st.int_line = state_get_u8(b);
    if (!state_buf_error(b) && (st.command & ~PCI_COMMAND_WRITABLE))
        state_buf_fail(b, -EINVAL, "pcie-host: command 0x%04x has read-only bits", st.command);
    if (state_buf_error(b))
        return -EINVAL;
    p->st = st;
    return 0;
}
