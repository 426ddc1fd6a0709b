/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Datapath: wraps a packet in a peer's precomputed outer header. Runs on the
 * worker cores, once per redirected packet: noexcept, no allocation, and no
 * loop over the payload except the software UDP checksum of outer IPv6.
 */
#include "flowhome/encap.hpp"
#include "flowhome/wire.hpp"

#include <cstddef>
#include <cstring>

#include <rte_ip.h>
#include <rte_mbuf.h>

namespace flowhome {
namespace {

using namespace wire;

/* Bytes build_template() writes per packet: IP-in-IP, and GENEVE with its
 * inner Ethernet header; outer IPv4 and IPv6. */
constexpr uint16_t kIpipV4Write = kEthHeaderLen + kIpv4HeaderLen;
constexpr uint16_t kIpipV6Write = kEthHeaderLen + kIpv6HeaderLen;
constexpr uint16_t kGeneveV6Write = kMaxEncapHeader + kEthHeaderLen;
constexpr uint16_t kGeneveV4Write = kGeneveV6Write - kIpv6HeaderLen + kIpv4HeaderLen;
static_assert(kMaxEncapHeader ==
              kEthHeaderLen + kIpv6HeaderLen + kUdpHeaderLen + 8 + 4 + kGeneveOptionDataLen);
static_assert(sizeof(EncapTemplate::header) == kGeneveV6Write);
static_assert(encap_overhead(EncapKind::ipip, Family::ipv4) == kIpipV4Write - kEthHeaderLen &&
              encap_overhead(EncapKind::ipip, Family::ipv6) == kIpipV6Write - kEthHeaderLen &&
              encap_overhead(EncapKind::geneve, Family::ipv4) == kGeneveV4Write - kEthHeaderLen &&
              encap_overhead(EncapKind::geneve, Family::ipv6) == kGeneveV6Write - kEthHeaderLen);

/* RFC 8926 section 3.3: the source port SHOULD come from the ephemeral range 49152-65535. */
constexpr uint16_t kEphemeralPortBase = 49152;
constexpr uint16_t kEphemeralPortMask = 16383;

/*
 * The template is one of four fixed sizes; a constant-size memcpy compiles to
 * a few vector moves instead of a call. The copy must not run past
 * write_len: the bytes after it are the packet's own.
 */
inline void copy_header(uint8_t *dst, const EncapTemplate &t) noexcept
{
    switch (t.write_len) {
    case kIpipV4Write:
        std::memcpy(dst, t.header, kIpipV4Write);
        break;
    case kIpipV6Write:
        std::memcpy(dst, t.header, kIpipV6Write);
        break;
    case kGeneveV4Write:
        std::memcpy(dst, t.header, kGeneveV4Write);
        break;
    case kGeneveV6Write:
        std::memcpy(dst, t.header, kGeneveV6Write);
        break;
    default:
        std::memcpy(dst, t.header, t.write_len);
        break;
    }
}

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

/*
 * RFC 768 / RFC 8200 section 8.1: UDP checksum over the IPv6 pseudo-header
 * (addresses, upper-layer length, next header 17) and the whole datagram. A
 * result of 0 is sent as 0xFFFF, since 0 means "no checksum".
 * udp_off + udp_len == pkt_len by construction.
 */
inline uint16_t udp6_checksum(const rte_mbuf *m, const uint8_t *ip6, uint16_t udp_off,
                              uint16_t udp_len) noexcept
{
    /* Sums in memory order, as rte_raw_cksum does (RFC 1071 2(B)). */
    uint32_t sum = m->nb_segs == 1 ? rte_raw_cksum(ip6 - kEthHeaderLen + udp_off, udp_len)
                                   : raw_sum_mbuf(m, udp_off, udp_len);
    sum += rte_raw_cksum(ip6 + 8, 32);
    sum += wire::be16(udp_len);
    sum += wire::be16(static_cast<uint16_t>(kProtoUdp));
    const uint16_t csum = static_cast<uint16_t>(~fold(sum));
    return csum == 0 ? 0xFFFF : csum;
}

} // namespace

EncapStatus encap_packet(rte_mbuf *m, const EncapTemplate &t, EncapMeta meta) noexcept
{
    const bool geneve = t.kind == EncapKind::geneve;

    /*
     * Caller contract: meta describes m (an Ethernet header before the IP
     * header, which lies in the first segment). If it does not, there is no
     * way to build the packet in this mbuf; report it without touching m.
     */
    if (meta.l3_offset < kEthHeaderLen || meta.l3_offset > rte_pktmbuf_data_len(m) ||
        static_cast<uint32_t>(meta.l3_offset) + meta.l3_len > rte_pktmbuf_pkt_len(m))
        return EncapStatus::no_headroom;

    /* Every check before the first write, so that a refused mbuf is untouched. */
    const uint32_t ip_len = encapsulated_ip_length(t, meta);
    if (ip_len > t.mtu)
        return EncapStatus::too_big;
    /* Everything before the inner IP header is written anew: the old
     * Ethernet header and its VLAN tags, then headroom for the rest. */
    const int grow = int{t.write_len} - int{meta.l3_offset};
    if (grow > static_cast<int>(rte_pktmbuf_headroom(m)))
        return EncapStatus::no_headroom;

    /*
     * Ethernet padding (a short frame filled up to 60 bytes) is not part of
     * the IP packet and must not be tunnelled: the outer lengths would
     * disagree with the bytes sent. Trim it when it sits in the last segment
     * (always, for the usual single-segment mbuf); padding spread over
     * segments stays behind the outer packet, delimited by its lengths.
     */
    trim_padding(m, static_cast<uint32_t>(meta.l3_offset) + meta.l3_len);

    /* What rte_pktmbuf_adj() then rte_pktmbuf_prepend() would do, in one step. */
    m->data_off = static_cast<uint16_t>(m->data_off - grow);
    m->data_len = static_cast<uint16_t>(m->data_len + grow);
    m->pkt_len = static_cast<uint32_t>(static_cast<int64_t>(m->pkt_len) + grow);
    auto *h = rte_pktmbuf_mtod(m, uint8_t *);
    copy_header(h, t);
    if (geneve && meta.inner_family == Family::ipv6)
        store16(h + t.header_len + 12, kEtherTypeIpv6);

    uint8_t *ip = h + kEthHeaderLen;
    const uint8_t inner_proto = meta.inner_family == Family::ipv6 ? kProtoIpv6 : kProtoIpip;
    uint16_t ip_header_len;
    if (t.outer_family == Family::ipv4) {
        ip_header_len = kIpv4HeaderLen;
        store16(ip + 2, static_cast<uint16_t>(ip_len));
        /*
         * Checksum from the template's precomputed sum of the invariant words
         * (RFC 1071 section 2(4), incremental update as in RFC 1624): add the
         * total length and, for IP-in-IP, the protocol change in the
         * TTL/protocol word (the template holds protocol 4).
         */
        uint32_t sum = t.ipv4_csum_base + ip_len;
        if (!geneve) {
            ip[9] = inner_proto;
            sum += static_cast<uint32_t>(inner_proto - kProtoIpip);
        }
        store16(ip + 10, static_cast<uint16_t>(~fold(sum)));
    } else {
        ip_header_len = kIpv6HeaderLen;
        store16(ip + 4, static_cast<uint16_t>(ip_len - kIpv6HeaderLen));
        if (!geneve)
            ip[6] = inner_proto;
        /*
         * RFC 6438 section 3: a tunnel endpoint sets the outer flow label
         * from the inner flow so that routers can spread tunnelled traffic
         * (the only entropy an IP-in-IPv6 packet has). Traffic class stays.
         */
        store32(ip, (load32(ip) & 0xFFF00000u) | (meta.flow_hash & 0x000FFFFFu));
    }

    if (geneve) {
        uint8_t *udp = h + t.udp_offset;
        const auto udp_len = static_cast<uint16_t>(ip_len - ip_header_len);
        store16(udp,
                static_cast<uint16_t>(kEphemeralPortBase + (meta.flow_hash & kEphemeralPortMask)));
        store16(udp + 4, udp_len);

        uint8_t *opt = h + t.option_offset;
        store16(opt + offsetof(GeneveFlowhomeOption, ingress_node), meta.ingress_node);
        opt[offsetof(GeneveFlowhomeOption, hops)] = meta.hops;
        store16(opt + offsetof(GeneveFlowhomeOption, affinity), meta.affinity);
        store16(opt + offsetof(GeneveFlowhomeOption, service_version), meta.service_version);

        /*
         * Outer IPv4: checksum 0 is allowed (RFC 768, RFC 8926 3.3); the
         * inner packet carries its own. Outer IPv6 needs a real one unless
         * the domain has agreed on zero checksums (RFC 6935, RFC 6936).
         */
        if (t.outer_family == Family::ipv6 && !t.udp6_zero_checksum) {
            /* Memory-order sum: stored as is. */
            const uint16_t csum = udp6_checksum(m, ip, t.udp_offset, udp_len);
            std::memcpy(udp + 6, &csum, sizeof(csum));
        }
    }

    set_tx_lengths(m, kEthHeaderLen, ip_header_len);
    return EncapStatus::ok;
}

} // namespace flowhome
