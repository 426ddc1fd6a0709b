/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Datapath: recognises packets a peer tunnelled to us (GENEVE, IP-in-IP),
 * checks them and strips the outer headers. Runs on the worker cores:
 * noexcept, no allocation; every refusal is a counted DropReason and leaves
 * the mbuf as it was.
 *
 * The outer headers were parsed by parse_packet(); the GENEVE header and
 * options are read here, from the first segment only, and every offset is
 * checked against both the first segment and the outer datagram's end.
 */
#include "flowhome/addr_table.hpp"
#include "flowhome/encap.hpp"
#include "flowhome/wire.hpp"

#include <cstddef>
#include <cstring>

#include <rte_mbuf.h>

namespace flowhome {
namespace {

using namespace wire;

/* RFC 8926 section 3.4 / 3.5 field masks. */
constexpr uint8_t kGeneveVersionShift = 6;
constexpr uint8_t kGeneveOptLenMask = 0x3F;
constexpr uint8_t kGeneveOamBit = 0x80;
constexpr uint8_t kGeneveOptionCritical = 0x80;
constexpr uint8_t kGeneveOptionLenMask = 0x1F;

DecapResult dropped(DecapResult r, DropReason why) noexcept
{
    r.status = DecapStatus::drop;
    r.drop = why;
    return r;
}

/* The outer destination must be one of ours: anything else is not a tunnel to us. */
bool addressed_to_us(const uint8_t *ip, const ParsedPacket &outer, const DecapConfig &cfg) noexcept
{
    if (outer.family == Family::ipv4)
        return cfg.local_v4 && cfg.local_v4->family == Family::ipv4 &&
               std::memcmp(ip + 16, cfg.local_v4->bytes.data(), 4) == 0;
    return cfg.local_v6 && cfg.local_v6->family == Family::ipv6 &&
           std::memcmp(ip + 24, cfg.local_v6->bytes.data(), 16) == 0;
}

/* Only peers may inject traffic that skips the ownership decision at the
 * edge: the sending peer by the outer source, kInvalidNode for a stranger. */
[[gnu::always_inline]] inline NodeId sending_peer(const uint8_t *ip, bool v4,
                                                  const PeerDirectory &peers) noexcept
{
    return v4 ? peers.find_v4(addr_word4(ip + 12)) : peers.find_v6(ip + 8);
}

/*
 * The RX offload flags describe the outer headers (or, on tunnel-aware NICs,
 * an inner header at offsets that no longer hold): forget them so the inner
 * checksums are verified in software.
 */
void forget_rx_offloads(rte_mbuf *m) noexcept
{
    m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK |
                     RTE_MBUF_F_RX_OUTER_IP_CKSUM_BAD | RTE_MBUF_F_RX_OUTER_L4_CKSUM_MASK);
    m->packet_type = 0;
}

/*
 * Moves the start of @p m to the inner Ethernet header at @p eth_off and
 * gives it the outer frame's addresses: the frame is then what the router
 * would have sent this node, whatever the sender wrote inside (its next
 * hop's MAC, which is a router's when the peers are routed; the local
 * port's kernel drops a frame not addressed to it). Preconditions: eth_off
 * >= 12 (the outer addresses, copied, do not overlap it) and eth_off + 14 <=
 * the first segment's length.
 */
void adopt_outer_macs(rte_mbuf *m, uint32_t eth_off) noexcept
{
    constexpr size_t kAddressesLen = 12; /* destination and source */
    auto *frame = rte_pktmbuf_mtod(m, uint8_t *);
    std::memcpy(frame + eth_off, frame, kAddressesLen);
    rte_pktmbuf_adj(m, static_cast<uint16_t>(eth_off));
}

/*
 * Replaces everything before @p inner_off with a 14-byte Ethernet header that
 * keeps the outer MAC addresses (VLAN tags go). Preconditions: inner_off >= 14
 * + 20 (an outer IP header at least) and inner_off <= the first segment's
 * length.
 */
void strip_to_ip(rte_mbuf *m, uint32_t inner_off, uint16_t ether_type) noexcept
{
    store16(rte_pktmbuf_mtod_offset(m, uint8_t *, inner_off - 2), ether_type);
    adopt_outer_macs(m, inner_off - kEthHeaderLen);
}

/* True when the first byte of an inner IP packet carries the version its label promised. */
bool version_matches(uint8_t first_byte, uint16_t ether_type) noexcept
{
    return (first_byte >> 4) == (ether_type == kEtherTypeIpv4 ? 4 : 6);
}

/* Our option's data at @p o, into @p r. */
void read_option(const uint8_t *o, DecapResult &r) noexcept
{
    r.ingress_node = load16(o + offsetof(GeneveFlowhomeOption, ingress_node));
    /* Through a tunnel, at least one hop was taken, whatever a peer wrote:
     * 0 would let the packet be redirected again and answered as if the
     * router had sent it. (An or, not std::max: 3 instructions a packet
     * where max took 9.) */
    r.hops = o[offsetof(GeneveFlowhomeOption, hops)];
    r.hops |= static_cast<uint8_t>(r.hops == 0);
    r.affinity = load16(o + offsetof(GeneveFlowhomeOption, affinity));
    r.service_version = load16(o + offsetof(GeneveFlowhomeOption, service_version));
}

/* The end of the outer IP packet in the frame: its length says, unless the
 * frame is shorter (the parser checked it against pkt_len). */
uint32_t outer_ip_end(const rte_mbuf *m, const ParsedPacket &outer) noexcept
{
    const uint32_t end = static_cast<uint32_t>(outer.l3_offset) + outer.l3_len;
    return end < rte_pktmbuf_pkt_len(m) ? end : rte_pktmbuf_pkt_len(m);
}

DecapResult decap_geneve(rte_mbuf *m, const ParsedPacket &outer, uint32_t ip_end,
                         DecapResult r) noexcept
{
    const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint32_t seg_len = rte_pktmbuf_data_len(m);

    /* The UDP datagram bounds the GENEVE packet (RFC 768 length; the parser checked it). */
    const uint32_t udp = outer.l4_offset;
    if (udp == 0 || udp + kUdpHeaderLen > ip_end || udp + kUdpHeaderLen > seg_len)
        return dropped(r, DropReason::geneve_truncated);
    const uint32_t udp_len = load16(frame + udp + 4);
    if (udp_len < kUdpHeaderLen || udp + udp_len > ip_end)
        return dropped(r, DropReason::geneve_truncated);
    const uint32_t udp_end = udp + udp_len;

    /* RFC 8926 section 3.4: the fixed 8-byte header, inside the datagram and the first segment. */
    const uint32_t gnv = udp + kUdpHeaderLen;
    if (gnv + kGeneveHeaderLen > udp_end || gnv + kGeneveHeaderLen > seg_len)
        return dropped(r, DropReason::geneve_truncated);
    const uint8_t *g = frame + gnv;
    /* "Packets received by a tunnel endpoint with an unknown version MUST be dropped." */
    if ((g[0] >> kGeneveVersionShift) != 0)
        return dropped(r, DropReason::geneve_bad_version);
    const uint32_t opts = gnv + kGeneveHeaderLen;
    const uint32_t opts_end = opts + 4u * (g[0] & kGeneveOptLenMask);
    if (opts_end > udp_end || opts_end > seg_len)
        return dropped(r, DropReason::geneve_truncated);
    /*
     * O bit: a control message for the tunnel endpoint itself. We implement
     * no GENEVE OAM, and such packets "MUST NOT be forwarded" as data.
     */
    if (g[1] & kGeneveOamBit)
        return dropped(r, DropReason::geneve_critical_option);

    /*
     * RFC 8926 section 3.5: walk the TLVs. Ours carries the redirect
     * metadata; unknown options are skipped unless critical ("MUST drop");
     * the C bit is only a hint that critical options are present, so it
     * needs no separate handling. A length running past Opt Len is malformed.
     */
    bool have_option = false;
    for (uint32_t pos = opts; pos < opts_end;) {
        if (pos + kGeneveOptionHeaderLen > opts_end)
            return dropped(r, DropReason::geneve_truncated);
        const uint16_t opt_class = load16(frame + pos);
        const uint8_t opt_type = frame[pos + 2];
        const uint32_t data_len = 4u * (frame[pos + 3] & kGeneveOptionLenMask);
        const uint32_t data = pos + kGeneveOptionHeaderLen;
        if (data + data_len > opts_end)
            return dropped(r, DropReason::geneve_truncated);
        if (opt_class == kGeneveOptionClass && opt_type == kGeneveOptionType) {
            if (data_len < kGeneveOptionDataLen)
                return dropped(r, DropReason::geneve_truncated);
            read_option(frame + data, r);
            have_option = true;
        } else if (opt_type & kGeneveOptionCritical) {
            return dropped(r, DropReason::geneve_critical_option);
        }
        pos = data + data_len;
    }
    if (!have_option) {
        /* A plain Linux geneve device sends no option: it is the ingress, one hop taken. */
        r.ingress_node = r.from_peer;
        r.hops = 1;
    }

    const uint16_t protocol = load16(g + 2);
    const uint32_t inner_len = udp_end - opts_end;
    if (protocol == kEtherTypeTeb) {
        if (inner_len < kEthHeaderLen || opts_end + kEthHeaderLen > seg_len)
            return dropped(r, DropReason::geneve_truncated);
        trim_padding(m, udp_end);
        adopt_outer_macs(m, opts_end);
    } else if (protocol == kEtherTypeIpv4 || protocol == kEtherTypeIpv6) {
        /* Protocol 0x0800 / 0x86DD: a bare IP packet (RFC 8926 3.4); give it an Ethernet header. */
        if (inner_len == 0 || opts_end >= seg_len)
            return dropped(r, DropReason::geneve_truncated);
        if (!version_matches(frame[opts_end], protocol))
            return dropped(r, DropReason::inner_malformed);
        trim_padding(m, udp_end);
        strip_to_ip(m, opts_end, protocol);
    } else {
        return dropped(r, DropReason::geneve_bad_protocol);
    }
    r.status = DecapStatus::ok;
    return r;
}

/*
 * RFC 2003 (IPv4 protocol 4), RFC 4213 (protocol 41), RFC 2473 (IPv6 next
 * header 4 / 41): the inner packet starts where the parser found the
 * upper-layer header, after outer IPv4 options or IPv6 extension headers.
 */
DecapResult decap_ipip(rte_mbuf *m, const ParsedPacket &outer, uint32_t ip_end,
                       DecapResult r) noexcept
{
    const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint32_t seg_len = rte_pktmbuf_data_len(m);
    const uint32_t min_inner =
        outer.l3_offset + (outer.family == Family::ipv4 ? kIpv4HeaderLen : kIpv6HeaderLen);
    const uint32_t inner = outer.l4_offset;
    if (inner < min_inner || inner >= ip_end || inner >= seg_len)
        return dropped(r, DropReason::inner_malformed);
    const uint16_t ether_type = outer.l4_proto == kProtoIpip ? kEtherTypeIpv4 : kEtherTypeIpv6;
    if (!version_matches(frame[inner], ether_type))
        return dropped(r, DropReason::inner_malformed);

    r.ingress_node = r.from_peer;
    r.hops = kHopsSpent;
    /* A short IP-in-IP packet arrives padded to 60 bytes: the padding goes
     * with the outer headers, so the inner frame ends where its packet does. */
    trim_padding(m, ip_end);
    strip_to_ip(m, inner, ether_type);
    r.status = DecapStatus::ok;
    return r;
}

} // namespace

EcnEgress ecn_decapsulate(uint8_t *ip, Family family, uint8_t outer_ecn) noexcept
{
    const bool v4 = family == Family::ipv4;
    /* The TOS byte; for IPv6 the traffic class, bits 4 to 11 of the first word. */
    const uint16_t word = load16(ip);
    const uint8_t tos = v4 ? static_cast<uint8_t>(word) : static_cast<uint8_t>(word >> 4);
    const uint8_t inner = tos & kEcnMask;
    uint8_t ecn = inner;
    if (outer_ecn == kEcnCe) {
        /* "<drop>": the inner packet cannot carry the congestion mark. */
        if (inner == kEcnNotEct)
            return EcnEgress::drop;
        ecn = kEcnCe;
    } else if (outer_ecn == kEcnEct1 && inner == kEcnEct0) {
        ecn = kEcnEct1;
    }
    if (ecn == inner) {
        /* Figure 4's "(!!!)": an ECN-capable outer header over a packet
         * that is not, or ECT(1) over CE. */
        const bool suspect = (outer_ecn != kEcnNotEct && inner == kEcnNotEct) ||
                             (outer_ecn == kEcnEct1 && inner == kEcnCe);
        return suspect ? EcnEgress::suspect : EcnEgress::unchanged;
    }

    const uint8_t new_tos = static_cast<uint8_t>((tos & ~kEcnMask) | ecn);
    if (v4) {
        /* RFC 1624 equation 3: HC' = ~(~HC + ~m + m'), m the first 16-bit word. */
        const uint16_t new_word = static_cast<uint16_t>((word & 0xFF00) | new_tos);
        const uint32_t sum = uint32_t{static_cast<uint16_t>(~load16(ip + 10))} +
                             uint32_t{static_cast<uint16_t>(~word)} + new_word;
        store16(ip, new_word);
        store16(ip + 10, static_cast<uint16_t>(~fold(sum)));
    } else {
        store16(ip, static_cast<uint16_t>((word & 0xF00F) | (uint16_t{new_tos} << 4)));
    }
    return EcnEgress::marked;
}

namespace detail {

bool decap_plain_geneve(rte_mbuf *m, const ParsedPacket &outer, const PeerDirectory &peers,
                        const DecapConfig &cfg, DecapResult &r) noexcept
{
    /* What a peer's template writes after the outer IP header (template.cpp):
     * UDP, then GENEVE version 0, Opt Len 3 (our option alone: its header
     * and 8 bytes), neither O nor C, protocol 0x6558, the VNI; then our
     * option's header: class, type, length 2 words. */
    constexpr uint32_t kGeneveWord =
        uint32_t{(kGeneveOptionHeaderLen + kGeneveOptionDataLen) / 4} << 24 | kEtherTypeTeb;
    constexpr uint32_t kOptionWord = uint32_t{kGeneveOptionClass} << 16 |
                                     uint32_t{kGeneveOptionType} << 8 | kGeneveOptionDataLen / 4;
    constexpr uint32_t kTunnelLen =
        kUdpHeaderLen + kGeneveHeaderLen + kGeneveOptionHeaderLen + kGeneveOptionDataLen;

    /* Untagged, a 20-byte IPv4 header or an IPv6 one without extensions
     * (the transport header's offset says so), not a fragment. */
    const bool v4 = outer.family == Family::ipv4;
    const uint32_t udp = kEthHeaderLen + (v4 ? kIpv4HeaderLen : kIpv6HeaderLen);
    if (outer.l4_proto != kProtoUdp || outer.dst_port != cfg.geneve_port ||
        outer.l3_offset != kEthHeaderLen || outer.l4_offset != udp || outer.fragment ||
        (!v4 && outer.family != Family::ipv6))
        return false;
    /* Every header up to the inner Ethernet one's end in the first segment
     * and in the UDP datagram, the datagram in the IP packet. */
    const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint32_t inner = udp + kTunnelLen;
    if (inner + kEthHeaderLen > rte_pktmbuf_data_len(m))
        return false;
    const uint32_t udp_end = udp + load16(frame + udp + 4);
    const uint8_t *g = frame + udp + kUdpHeaderLen;
    if (inner + kEthHeaderLen > udp_end || udp_end > outer_ip_end(m, outer) ||
        load32(g) != kGeneveWord || load32(g + kGeneveHeaderLen) != kOptionWord)
        return false;

    /* Ours in form: the general path's outcomes from here on, in its order. */
    r = DecapResult{};
    const uint8_t *ip = frame + kEthHeaderLen;
    if (!addressed_to_us(ip, outer, cfg))
        return true;
    r.from_peer = sending_peer(ip, v4, peers);
    if (r.from_peer == kInvalidNode) {
        r = dropped(r, DropReason::decap_unknown_peer);
        return true;
    }
    r.outer_ecn = ecn_field(ip, outer.family);
    read_option(g + kGeneveHeaderLen + kGeneveOptionHeaderLen, r);
    trim_padding(m, udp_end);
    adopt_outer_macs(m, inner);
    forget_rx_offloads(m);
    r.status = DecapStatus::ok;
    return true;
}

DecapResult decap_packet_general(rte_mbuf *m, const ParsedPacket &outer, const PeerDirectory &peers,
                                 const DecapConfig &cfg) noexcept
{
    DecapResult r;
    const bool geneve = outer.l4_proto == kProtoUdp && outer.dst_port == cfg.geneve_port;
    const bool ipip = outer.l4_proto == kProtoIpip || outer.l4_proto == kProtoIpv6;
    if (!geneve && !ipip)
        return r;
    /*
     * A fragmented tunnel packet cannot be decapsulated piecewise; our peers
     * set DF. Hand fragments to the kernel path, which reassembles.
     */
    if (outer.fragment)
        return r;

    const uint8_t *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint32_t seg_len = rte_pktmbuf_data_len(m);
    const uint32_t ip_header = outer.family == Family::ipv4
                                   ? kIpv4HeaderLen
                                   : (outer.family == Family::ipv6 ? kIpv6HeaderLen : 0);
    if (ip_header == 0 || outer.l3_offset < kEthHeaderLen || outer.l3_offset + ip_header > seg_len)
        return r;
    const uint8_t *ip = frame + outer.l3_offset;
    if (!addressed_to_us(ip, outer, cfg))
        return r;

    r.from_peer = sending_peer(ip, outer.family == Family::ipv4, peers);
    if (r.from_peer == kInvalidNode)
        return dropped(r, DropReason::decap_unknown_peer);

    r.outer_ecn = ecn_field(ip, outer.family);

    const uint32_t ip_end = outer_ip_end(m, outer);
    r = geneve ? decap_geneve(m, outer, ip_end, r) : decap_ipip(m, outer, ip_end, r);
    if (r.status == DecapStatus::ok)
        forget_rx_offloads(m);
    return r;
}

} // namespace detail

DecapResult decap_packet(rte_mbuf *m, const ParsedPacket &outer, const PeerDirectory &peers,
                         const DecapConfig &cfg) noexcept
{
    DecapResult r;
    if (detail::decap_plain_geneve(m, outer, peers, cfg, r)) [[likely]]
        return r;
    return detail::decap_packet_general(m, outer, peers, cfg);
}

} // namespace flowhome
