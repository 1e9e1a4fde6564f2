/*
 * Offloads done on the host for a guest NIC: completing a partial
 * checksum (virtio's NEEDS_CSUM), cutting a TCP super-frame into MSS-sized
 * frames (TSO / virtio's GSO_TCPV4 and GSO_TCPV6), and checking the
 * TCP/UDP checksum of a received frame (so the NIC can tell the guest it
 * need not: virtio's DATA_VALID).
 *
 * Why: in an emulator every guest instruction is expensive, and checksums
 * and per-packet TCP work are the guest's biggest per-byte costs when it
 * sends.  Done here in C they cost a few percent of that.
 *
 * Frames are Ethernet (optionally one 802.1Q tag) carrying IPv4 or IPv6
 * (no extension headers before TCP).  Everything is bounds-checked: the
 * input comes from the guest.  Stateless, no allocation.
 */
#ifndef GODWIT_NET_NET_OFFLOAD_H
#define GODWIT_NET_NET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define NET_TSO_SEG_MAX 9216 /* largest frame a segment may be (jumbo MTU) */

/* The 16-bit one's-complement sum of len bytes, added to sum (not folded,
 * not inverted): the Internet checksum's building block (RFC 1071). */
uint64_t net_csum_add(uint64_t sum, const uint8_t *p, size_t len);

/* Fold a sum into 16 bits (not inverted). */
uint16_t net_csum_fold(uint64_t sum);

/*
 * NEEDS_CSUM (virtio 1.2 §5.1.6.2): the checksum field at csum_start +
 * csum_offset holds the pseudo-header sum; store the checksum of
 * frame[csum_start..len) there.  0, or -EINVAL if the offsets do not fit.
 */
int net_csum_complete(uint8_t *frame, size_t len, size_t csum_start,
                      size_t csum_offset) gw_must_check;

/*
 * TSO: split frame (len bytes: Ethernet + IPv4/IPv6 + TCP + payload, the
 * TCP checksum partial or not) into frames of at most mss payload bytes,
 * each with its own IP length, IPv4 ID and header checksum, TCP sequence
 * number and full TCP checksum; FIN and PSH only on the last, CWR only on
 * the first.  Each segment is built in seg (NET_TSO_SEG_MAX bytes) and
 * handed to emit (which copies it).  Returns the number of segments, or
 * -EINVAL for a frame that is not TCP over IPv4/IPv6 as described, or an
 * mss that does not fit NET_TSO_SEG_MAX.
 */
int net_tso_segment(const uint8_t *frame, size_t len, unsigned mss, uint8_t *seg,
                    void (*emit)(void *opaque, const uint8_t *seg, size_t len),
                    void *opaque) gw_must_check;

/* True if frame is TCP or UDP over IPv4/IPv6 (unfragmented) and its
 * checksum verifies (a UDP/IPv4 checksum of 0, "none", counts as valid). */
bool net_csum_verify(const uint8_t *frame, size_t len);

#endif
