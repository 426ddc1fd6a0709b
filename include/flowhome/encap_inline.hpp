/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The definition of encap_packet(), declared and documented in encap.hpp.
 * Inline: the worker's redirect compiles it in, without a call, the
 * registers a call saves and restores, or the switch on its result (about
 * 40 instructions fewer a redirect; docs/performance.md). Runs on the
 * worker cores, once per redirected packet: noexcept, no allocation, and no
 * loop over the payload but the software UDP checksum of outer IPv6, which
 * stays out of line (encap.cpp).
 *
 * Included at the end of encap.hpp, whose declarations it needs (and
 * includes, when included first).
 */
#pragma once

#include <cstddef>
#include <cstring>

#include <rte_mbuf.h>

#include "flowhome/encap.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {
namespace encap_detail {

/* Bytes build_template() writes per packet: IP-in-IP, and GENEVE with its
 * inner Ethernet header; outer IPv4 and IPv6. */
inline constexpr uint16_t kIpipV4Write = wire::kEthHeaderLen + wire::kIpv4HeaderLen;
inline constexpr uint16_t kIpipV6Write = wire::kEthHeaderLen + wire::kIpv6HeaderLen;
inline constexpr uint16_t kGeneveV6Write = kMaxEncapHeader + wire::kEthHeaderLen;
inline constexpr uint16_t kGeneveV4Write =
    kGeneveV6Write - wire::kIpv6HeaderLen + wire::kIpv4HeaderLen;
static_assert(kMaxEncapHeader == wire::kEthHeaderLen + wire::kIpv6HeaderLen + wire::kUdpHeaderLen +
                                     8 + 4 + kGeneveOptionDataLen);
static_assert(sizeof(EncapTemplate::header) == kGeneveV6Write);
static_assert(encap_overhead(EncapKind::ipip, Family::ipv4) == kIpipV4Write - wire::kEthHeaderLen &&
              encap_overhead(EncapKind::ipip, Family::ipv6) == kIpipV6Write - wire::kEthHeaderLen &&
              encap_overhead(EncapKind::geneve, Family::ipv4) ==
                  kGeneveV4Write - wire::kEthHeaderLen &&
              encap_overhead(EncapKind::geneve, Family::ipv6) ==
                  kGeneveV6Write - wire::kEthHeaderLen);

/* RFC 8926 section 3.3: the source port SHOULD come from the ephemeral range 49152-65535. */
inline constexpr uint16_t kEphemeralPortBase = 49152;
inline constexpr uint16_t kEphemeralPortMask = 16383;

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

/**
 * RFC 768 / RFC 8200 section 8.1: UDP checksum over the IPv6 pseudo-header
 * and the datagram at @p udp_off (to the end of the packet) of @p m, whose
 * outer IPv6 header is at @p ip6. A result of 0 is sent as 0xFFFF.
 */
uint16_t udp6_checksum(const rte_mbuf *m, const uint8_t *ip6, uint16_t udp_off,
                       uint16_t udp_len) noexcept;

} // namespace encap_detail

inline EncapStatus encap_packet(rte_mbuf *m, const EncapTemplate &t, EncapMeta meta) noexcept
{
    const bool geneve = t.kind == EncapKind::geneve;

    /*
     * Caller contract: meta describes m (an Ethernet header before the IP
     * header, which lies in the first segment: its first 20 bytes at
     * least, which both families have). If it does not, there is no way to
     * build the packet in this mbuf; report it without touching m.
     */
    if (meta.l3_offset < wire::kEthHeaderLen ||
        meta.l3_offset + uint32_t{wire::kIpv4HeaderLen} > rte_pktmbuf_data_len(m) ||
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
    encap_detail::copy_header(h, t);
    if (geneve && meta.inner_family == Family::ipv6)
        wire::store16(h + t.header_len + 12, kEtherTypeIpv6);

    /*
     * What the outer header takes from the inner one's TOS / traffic class
     * (the template holds the rest): the ECN field (RFC 6040 section 4.1,
     * normal mode, as RFC 8926 asks of GENEVE), so that a congested router
     * marks the outer header rather than drop it, and the owner copies the
     * mark inside; the DSCP too where the domain inherits it. The inner
     * header follows what the copy wrote, in a line the parser has read.
     */
    const uint16_t inner_word = wire::load16(h + t.write_len);
    const uint8_t tos = static_cast<uint8_t>(
        (meta.inner_family == Family::ipv6 ? inner_word >> 4 : inner_word) & t.tos_from_inner);

    uint8_t *ip = h + wire::kEthHeaderLen;
    const uint8_t inner_proto = meta.inner_family == Family::ipv6 ? kProtoIpv6 : kProtoIpip;
    uint16_t ip_header_len;
    if (t.outer_family == Family::ipv4) {
        ip_header_len = wire::kIpv4HeaderLen;
        wire::store16(ip + 2, static_cast<uint16_t>(ip_len));
        /*
         * Checksum from the template's precomputed sum of the invariant words
         * (RFC 1071 section 2(4), incremental update as in RFC 1624): add the
         * total length, the TOS bits taken from the inner header (the low
         * byte of the first word) and, for IP-in-IP, the protocol change in
         * the TTL/protocol word (the template holds protocol 4).
         */
        ip[1] |= tos; /* the template's DSCP, or 0: no bit in common with tos */
        uint32_t sum = t.ipv4_csum_base + ip_len + tos;
        if (!geneve) {
            ip[9] = inner_proto;
            sum += static_cast<uint32_t>(inner_proto - kProtoIpip);
        }
        wire::store16(ip + 10, static_cast<uint16_t>(~wire::fold(sum)));
    } else {
        ip_header_len = wire::kIpv6HeaderLen;
        wire::store16(ip + 4, static_cast<uint16_t>(ip_len - wire::kIpv6HeaderLen));
        if (!geneve)
            ip[6] = inner_proto;
        /*
         * RFC 6438 section 3: a tunnel endpoint sets the outer flow label
         * from the inner flow so that routers can spread tunnelled traffic
         * (the only entropy an IP-in-IPv6 packet has). The traffic class is
         * the template's, with the inner header's bits (above) added.
         */
        wire::store32(ip, (wire::load32(ip) & 0xFFF00000u) | (uint32_t{tos} << 20) |
                              (meta.flow_hash & 0x000FFFFFu));
    }

    if (geneve) {
        uint8_t *udp = h + t.udp_offset;
        const auto udp_len = static_cast<uint16_t>(ip_len - ip_header_len);
        wire::store16(udp,
                      static_cast<uint16_t>(encap_detail::kEphemeralPortBase +
                                            (meta.flow_hash & encap_detail::kEphemeralPortMask)));
        wire::store16(udp + 4, udp_len);

        uint8_t *opt = h + t.option_offset;
        wire::store16(opt + offsetof(GeneveFlowhomeOption, ingress_node), meta.ingress_node);
        opt[offsetof(GeneveFlowhomeOption, hops)] = meta.hops;
        wire::store16(opt + offsetof(GeneveFlowhomeOption, affinity), meta.affinity);
        wire::store16(opt + offsetof(GeneveFlowhomeOption, service_version), meta.service_version);

        /*
         * Outer IPv4: checksum 0 is allowed (RFC 768, RFC 8926 3.3); the
         * inner packet carries its own. Outer IPv6 needs a real one unless
         * the domain has agreed on zero checksums (RFC 6935, RFC 6936).
         */
        if (t.outer_family == Family::ipv6 && !t.udp6_zero_checksum) {
            /* Memory-order sum: stored as is. */
            const uint16_t csum = encap_detail::udp6_checksum(m, ip, t.udp_offset, udp_len);
            std::memcpy(udp + 6, &csum, sizeof(csum));
        }
    }

    set_tx_lengths(m, wire::kEthHeaderLen, ip_header_len);
    return EncapStatus::ok;
}

} // namespace flowhome
