/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control plane: builds the outer header toward one peer in one domain.
 * Runs on the main lcore when the node starts, before the workers; may
 * allocate and throw. The datapath (encap.cpp) copies the result in front of
 * each redirected packet and patches only the per-packet fields.
 */
#include "flowhome/encap.hpp"
#include "flowhome/wire.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include <rte_ip.h>

namespace flowhome {
namespace {

using namespace wire;

void validate(const TemplateParams &p)
{
    if (p.src.family != Family::ipv4 && p.src.family != Family::ipv6)
        throw std::invalid_argument("encap template: source address has no IP family");
    if (p.dst.family != Family::ipv4 && p.dst.family != Family::ipv6)
        throw std::invalid_argument("encap template: peer address has no IP family");
    if (p.src.family != p.dst.family)
        throw std::invalid_argument("encap template toward " + p.dst.to_string() + ": source " +
                                    p.src.to_string() + " is of the other address family");
    if (p.domain.encap != EncapKind::geneve && p.domain.encap != EncapKind::ipip)
        throw std::invalid_argument("encap template: unknown encapsulation kind");
    if (p.domain.encap == EncapKind::geneve && p.domain.geneve_port == 0)
        throw std::invalid_argument("encap template: GENEVE UDP port 0 in domain '" +
                                    p.domain.name + "'");
    if (p.domain.dscp > kMaxDscp)
        throw std::invalid_argument("encap template: DSCP " + std::to_string(p.domain.dscp) +
                                    " is not a 6-bit value");
    if (p.ttl == 0)
        throw std::invalid_argument("encap template: TTL / hop limit 0 would be discarded "
                                    "by the first router");
    const uint16_t min_mtu = p.dst.family == Family::ipv4 ? kMinIpv4Mtu : kMinIpv6Mtu;
    if (p.mtu < min_mtu)
        throw std::invalid_argument("encap template: MTU " + std::to_string(p.mtu) +
                                    " is below the minimum of " + std::to_string(min_mtu) +
                                    " for the outer address family");
}

/* RFC 2474 section 3: the DSCP is the TOS / traffic class's upper six bits. */
constexpr unsigned kDscpShift = 2;

/* The outer TOS / traffic class before the per-packet bits: the domain's
 * fixed DSCP, or 0 where the inner packet's is taken. */
uint8_t outer_tos(const TemplateParams &p) noexcept
{
    return p.domain.dscp_inherit ? 0 : static_cast<uint8_t>(p.domain.dscp << kDscpShift);
}

/*
 * RFC 791 section 3.1. DF is set: an outer packet the path cannot carry must
 * come back as an ICMP error rather than be fragmented, which most tunnel
 * endpoints (and our own decapsulation) do not reassemble. With DF set the
 * datagram is atomic, so the Identification field may be 0 (RFC 6864 4.1).
 * Total length and checksum stay 0: they are written per packet.
 */
uint16_t write_ipv4(uint8_t *ip, const TemplateParams &p, uint8_t protocol) noexcept
{
    ip[0] = 0x45;            /* version 4, IHL 5 words */
    ip[1] = outer_tos(p);    /* DSCP; ECN per packet */
    store16(ip + 2, 0);      /* total length: per packet */
    store16(ip + 4, 0);      /* identification */
    store16(ip + 6, 0x4000); /* flags DF, fragment offset 0 */
    ip[8] = p.ttl;
    ip[9] = protocol;
    store16(ip + 10, 0); /* checksum: per packet */
    std::memcpy(ip + 12, p.src.bytes.data(), 4);
    std::memcpy(ip + 16, p.dst.bytes.data(), 4);
    /*
     * One's-complement sum of the invariant part (RFC 1071 section 2): the
     * datapath adds the total length and inverts. rte_raw_cksum sums the
     * words as they lie in memory; the sum is byte-order independent (RFC
     * 1071 2(B)), so swapping the folded result gives the host-order sum.
     */
    return be16(rte_raw_cksum(ip, kIpv4HeaderLen));
}

/* RFC 8200 section 3. Payload length and (for the flow label) word 0 are patched per packet. */
void write_ipv6(uint8_t *ip, const TemplateParams &p, uint8_t next_header) noexcept
{
    /* Version 6, the traffic class's DSCP (ECN per packet), flow label 0. */
    store32(ip, 6u << 28 | uint32_t{outer_tos(p)} << 20);
    store16(ip + 4, 0); /* payload length: per packet */
    ip[6] = next_header;
    ip[7] = p.ttl;
    std::memcpy(ip + 8, p.src.bytes.data(), 16);
    std::memcpy(ip + 24, p.dst.bytes.data(), 16);
}

} // namespace

EncapTemplate build_template(const TemplateParams &p)
{
    validate(p);

    EncapTemplate t{}; /* value-initialised: header[] and every field zero */
    t.kind = p.domain.encap;
    t.outer_family = p.dst.family;
    t.udp6_zero_checksum = p.domain.udp6_zero_checksum;
    t.mtu = p.mtu;
    t.tx_port = p.tx_port;
    t.peer = p.peer;
    t.tos_from_inner = p.domain.dscp_inherit ? 0xFF : kEcnMask;
    const bool geneve = p.domain.encap == EncapKind::geneve;
    const bool v4 = p.dst.family == Family::ipv4;
    uint8_t *h = t.header;

    /* Outer Ethernet (IEEE 802.3 / RFC 894). */
    write_eth_header(h, p.dst_mac, p.src_mac, v4 ? kEtherTypeIpv4 : kEtherTypeIpv6);
    uint16_t off = kEthHeaderLen;

    /*
     * IP-in-IP: the protocol is 4 (RFC 2003) or 41 (RFC 4213 / RFC 2473) by
     * the inner family; the template holds 4 and the datapath rewrites it.
     */
    const uint8_t protocol = geneve ? kProtoUdp : kProtoIpip;
    if (v4) {
        t.ipv4_csum_base = write_ipv4(h + off, p, protocol);
        off += kIpv4HeaderLen;
    } else {
        write_ipv6(h + off, p, protocol);
        off += kIpv6HeaderLen;
    }

    if (geneve) {
        /* RFC 768. Source port and length per packet; checksum 0 (RFC 8926 3.3) or per packet. */
        t.udp_offset = off;
        uint8_t *udp = h + off;
        store16(udp, 0);
        store16(udp + 2, p.domain.geneve_port);
        store16(udp + 4, 0);
        store16(udp + 6, 0);
        off += kUdpHeaderLen;

        /*
         * RFC 8926 section 3.4: Ver 0 | Opt Len (4-byte words of options),
         * O = 0 (not a control packet), C = 0 (our option is not critical),
         * protocol 0x6558 (Ethernet), VNI 0, reserved 0.
         */
        constexpr uint8_t opt_words = (kGeneveOptionHeaderLen + kGeneveOptionDataLen) / 4;
        uint8_t *gnv = h + off;
        gnv[0] = opt_words & 0x3F;
        gnv[1] = 0;
        store16(gnv + 2, kEtherTypeTeb);
        store32(gnv + 4, 0);
        off += kGeneveHeaderLen;

        /* RFC 8926 section 3.5: class, type, R R R | length in 4-byte words (data only). */
        uint8_t *opt = h + off;
        store16(opt, kGeneveOptionClass);
        opt[2] = kGeneveOptionType;
        opt[3] = (kGeneveOptionDataLen / 4) & 0x1F;
        off += kGeneveOptionHeaderLen;

        t.option_offset = off;
        GeneveFlowhomeOption o{};
        o.ingress_node = be16(p.self);
        std::memcpy(h + off, &o, sizeof(o));
        off += kGeneveOptionDataLen;
    }

    t.header_len = static_cast<uint8_t>(off);
    if (geneve) {
        /*
         * The inner Ethernet header (type IPv4; the datapath sets IPv6).
         * GENEVE carries a whole Ethernet frame: the owner must see it as if
         * it had arrived straight from us on the peer's link, so its
         * destination is the peer's next-hop MAC and its source our port's
         * MAC. A Linux geneve device drops frames not addressed to its own
         * MAC (docs/encapsulation.md).
         */
        std::memcpy(h + off, p.dst_mac.bytes.data(), 6);
        std::memcpy(h + off + 6, p.src_mac.bytes.data(), 6);
        store16(h + off + 12, kEtherTypeIpv4);
        off += kEthHeaderLen;
    }
    t.write_len = static_cast<uint8_t>(off);
    return t;
}

} // namespace flowhome
