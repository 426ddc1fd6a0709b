/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Datapath: the UDP checksum of an outer IPv6 header, the one part of
 * encap_packet() (encap_inline.hpp) that loops over the payload, and so
 * is not compiled into every caller.
 */
#include "flowhome/encap.hpp"
#include "flowhome/wire.hpp"

#include <rte_ip.h>
#include <rte_mbuf.h>

namespace flowhome::encap_detail {
namespace {

/*
 * One's-complement sum (RFC 1071, memory order, not folded) of @p len bytes
 * from @p off over the segments of @p m. Not rte_raw_cksum_mbuf(): DPDK
 * 22.11's truncates a segment's 32-bit partial sum to 16 bits before it
 * byte-swaps it (a segment after an odd number of bytes), dropping its
 * carries, and the checksum comes out wrong (found by fuzz_encap). Here each
 * part is folded first, then swapped.
 */
inline uint32_t raw_sum_mbuf(const rte_mbuf *m, uint32_t off, uint32_t len) noexcept
{
    uint32_t sum = 0;
    bool odd = false;
    for (const rte_mbuf *s = m; s != nullptr && len != 0; s = s->next) {
        const uint32_t seg = rte_pktmbuf_data_len(s);
        if (off >= seg) {
            off -= seg;
            continue;
        }
        const uint32_t n = seg - off < len ? seg - off : len;
        const uint16_t part = rte_raw_cksum(rte_pktmbuf_mtod_offset(s, const uint8_t *, off), n);
        sum += odd ? rte_bswap16(part) : part;
        odd ^= (n & 1) != 0;
        len -= n;
        off = 0;
    }
    return sum;
}

} // namespace

/*
 * RFC 768 / RFC 8200 section 8.1: UDP checksum over the IPv6 pseudo-header
 * (addresses, upper-layer length, next header 17) and the whole datagram. A
 * result of 0 is sent as 0xFFFF, since 0 means "no checksum".
 * udp_off + udp_len == pkt_len by construction.
 */
uint16_t udp6_checksum(const rte_mbuf *m, const uint8_t *ip6, uint16_t udp_off,
                       uint16_t udp_len) noexcept
{
    /* Sums in memory order, as rte_raw_cksum does (RFC 1071 2(B)). */
    uint32_t sum = m->nb_segs == 1 ? rte_raw_cksum(ip6 - wire::kEthHeaderLen + udp_off, udp_len)
                                   : raw_sum_mbuf(m, udp_off, udp_len);
    sum += rte_raw_cksum(ip6 + 8, 32);
    sum += wire::be16(udp_len);
    sum += wire::be16(static_cast<uint16_t>(kProtoUdp));
    const uint16_t csum = static_cast<uint16_t>(~wire::fold(sum));
    return csum == 0 ? 0xFFFF : csum;
}

} // namespace flowhome::encap_detail
