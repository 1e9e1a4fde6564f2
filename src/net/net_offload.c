/*
 * Host-side checksum and TCP segmentation offloads; see net_offload.h.
 *
 * Sums are kept in network order semantics: net_csum_add() sums native
 * 16-bit words (the one's-complement sum does not care about byte order
 * as long as it is swapped back, RFC 1071 §2(B)), folds, and returns the
 * big-endian value added to the running sum.  Chunks must start at even
 * offsets from the start of the checksummed data; only the last may have
 * an odd length.
 */
#include "net/net_offload.h"

#include <errno.h>
#include <string.h>

#define ETH_P_IPV4   0x0800
#define ETH_P_IPV6   0x86dd
#define ETH_P_VLAN   0x8100
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define TCP_FIN      0x01
#define TCP_PSH      0x08
#define TCP_CWR      0x80

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

uint16_t net_csum_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

uint64_t net_csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
    uint64_t s = 0;
    uint16_t f;

    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        s += (w & 0xffffffffu) + (w >> 32);
        p += 8;
        len -= 8;
    }
    while (len >= 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        s += w;
        p += 2;
        len -= 2;
    }
    if (len) {
        uint8_t last[2] = {p[0], 0};
        uint16_t w;
        memcpy(&w, last, 2);
        s += w;
    }
    f = net_csum_fold(s);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    f = (uint16_t)(f << 8 | f >> 8);
#endif
    return sum + f;
}

int net_csum_complete(uint8_t *frame, size_t len, size_t csum_start, size_t csum_offset)
{
    uint16_t c;

    if (csum_start > len || csum_offset > len - csum_start || len - csum_start - csum_offset < 2)
        return -EINVAL;
    c = (uint16_t)~net_csum_fold(net_csum_add(0, frame + csum_start, len - csum_start));
    /* A computed 0 goes out as 0xffff (the same value in one's complement),
     * which UDP needs: 0 there means "no checksum". */
    put16(frame + csum_start + csum_offset, c ? c : 0xffff);
    return 0;
}

/* Where the IP header starts and which version it is (4, 6, or 0). */
static unsigned net_l3(const uint8_t *f, size_t len, size_t *l3)
{
    uint16_t type;

    if (len < 14)
        return 0;
    *l3 = 14;
    type = get16(f + 12);
    if (type == ETH_P_VLAN) {
        if (len < 18)
            return 0;
        *l3 = 18;
        type = get16(f + 16);
    }
    if (type == ETH_P_IPV4 && len >= *l3 + 20 && (f[*l3] >> 4) == 4)
        return 4;
    if (type == ETH_P_IPV6 && len >= *l3 + 40 && (f[*l3] >> 4) == 6)
        return 6;
    return 0;
}

/* The pseudo-header sum (RFC 793 / RFC 8200 §8.1) for an L4 segment of l4len bytes. */
static uint64_t net_pseudo(const uint8_t *ip, unsigned ver, uint8_t proto, size_t l4len)
{
    uint8_t tail[8] = {0};

    if (ver == 4) {
        tail[0] = 0;
        tail[1] = proto;
        put16(tail + 2, (uint16_t)l4len);
        return net_csum_add(net_csum_add(0, ip + 12, 8), tail, 4);
    }
    put32(tail, (uint32_t)l4len);
    tail[7] = proto;
    return net_csum_add(net_csum_add(0, ip + 8, 32), tail, 8);
}

int net_tso_segment(const uint8_t *frame, size_t len, unsigned mss, uint8_t *seg,
                    void (*emit)(void *opaque, const uint8_t *seg, size_t len), void *opaque)
{
    size_t l3, l4, ihl = 0, doff, h, payload, off;
    unsigned ver = net_l3(frame, len, &l3), count = 0;
    uint32_t seq0;
    uint16_t id0 = 0;
    uint8_t flags0;

    if (ver == 4) {
        ihl = (frame[l3] & 15u) * 4u;
        if (ihl < 20 || frame[l3 + 9] != IPPROTO_TCP_ || (get16(frame + l3 + 6) & 0x3fff))
            return -EINVAL; /* not TCP, or a fragment */
        l4 = l3 + ihl;
        id0 = get16(frame + l3 + 4);
    } else if (ver == 6) {
        if (frame[l3 + 6] != IPPROTO_TCP_)
            return -EINVAL; /* extension headers are not cut */
        l4 = l3 + 40;
    } else {
        return -EINVAL;
    }
    if (l4 + 20 > len)
        return -EINVAL;
    doff = (frame[l4 + 12] >> 4) * 4u;
    h = l4 + doff;
    if (doff < 20 || h > len || mss == 0 || h + mss > NET_TSO_SEG_MAX)
        return -EINVAL;
    payload = len - h;
    seq0 = get32(frame + l4 + 4);
    flags0 = frame[l4 + 13];
    off = 0;
    do {
        size_t n = payload - off < mss ? payload - off : mss;
        bool first = off == 0, last = off + n >= payload;
        uint8_t fl = flags0;
        uint8_t *ip = seg + l3, *tcp = seg + l4;

        memcpy(seg, frame, h);
        memcpy(seg + h, frame + h + off, n);
        if (ver == 4) {
            put16(ip + 2, (uint16_t)(ihl + doff + n));
            put16(ip + 4, (uint16_t)(id0 + count));
            put16(ip + 10, 0);
            put16(ip + 10, (uint16_t)~net_csum_fold(net_csum_add(0, ip, ihl)));
        } else {
            put16(ip + 4, (uint16_t)(doff + n));
        }
        put32(tcp + 4, seq0 + (uint32_t)off);
        if (!last)
            fl &= (uint8_t) ~(TCP_FIN | TCP_PSH);
        if (!first)
            fl &= (uint8_t)~TCP_CWR;
        tcp[13] = fl;
        put16(tcp + 16, 0);
        put16(tcp + 16, (uint16_t)~net_csum_fold(net_csum_add(
                            net_pseudo(ip, ver, IPPROTO_TCP_, doff + n), tcp, doff + n)));
        emit(opaque, seg, h + n);
        count++;
        off += n;
    } while (off < payload);
    return (int)count;
}

bool net_csum_verify(const uint8_t *frame, size_t len)
{
    size_t l3, l4, l4len;
    unsigned ver = net_l3(frame, len, &l3);
    uint8_t proto;

    if (ver == 4) {
        size_t ihl = (frame[l3] & 15u) * 4u, tot = get16(frame + l3 + 2);
        if (ihl < 20 || tot < ihl || tot > len - l3 || (get16(frame + l3 + 6) & 0x3fff))
            return false;
        proto = frame[l3 + 9];
        l4 = l3 + ihl;
        l4len = tot - ihl;
    } else if (ver == 6) {
        proto = frame[l3 + 6];
        l4 = l3 + 40;
        l4len = get16(frame + l3 + 4);
        if (l4len > len - l4)
            return false;
    } else {
        return false;
    }
    if (proto == IPPROTO_TCP_) {
        if (l4len < 20)
            return false;
    } else if (proto == IPPROTO_UDP_) {
        if (l4len < 8)
            return false;
        if (ver == 4 && get16(frame + l4 + 6) == 0)
            return true; /* UDP over IPv4 without a checksum */
    } else {
        return false;
    }
    return net_csum_fold(net_csum_add(net_pseudo(frame + l3, ver, proto, l4len), frame + l4,
                                      l4len)) == 0xffff;
}
