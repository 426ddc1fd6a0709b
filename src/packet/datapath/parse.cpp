/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame parser run by the workers on every received packet.
 *
 * Bounds discipline: every header is read only after checking that it lies
 * within `len` (the contiguous first segment); IP length fields are checked
 * against `pkt_len` (the whole frame) because the payload may continue in
 * later segments. Each check is named after the rule it enforces and fails
 * with its own DropReason. No allocation, no exceptions, no per-byte loops
 * (the IPv4 header checksum aside).
 */
#include "flowhome/packet.hpp"
#include "flowhome/wire.hpp"

#include <algorithm>

namespace flowhome {
namespace {

using namespace wire;

constexpr uint32_t kIpv4MinHeaderLen = kIpv4HeaderLen;
using detail::kMaxOffset;
constexpr uint8_t kIpv6ExtRouting = 43;
constexpr uint8_t kIpv6ExtFragment = 44;
constexpr uint8_t kIpv6ExtAh = 51;
constexpr uint8_t kIpv6ExtDestOpts = 60;
constexpr uint32_t kIpv6FragHeaderLen = 8;
constexpr uint16_t kIpv6FragOffsetMask = 0xFFF8;
constexpr uint16_t kIpv6FragMore = 0x0001;

/* Unaligned big-endian load: Ethernet leaves the IP header 2-byte aligned at
 * best, so never dereference a wider pointer into the frame. */
[[gnu::cold]] ParseStatus reject(ParsedPacket &out, DropReason reason) noexcept
{
    out.drop = reason;
    return ParseStatus::drop;
}

/*
 * TCP or UDP header at `l4`; `l3_end` is the end of the IP packet (header +
 * payload, padding excluded) and may lie beyond `len`.
 */
ParseStatus parse_transport(const uint8_t *data, uint32_t len, uint32_t l4, uint32_t l3_end,
                            ParsedPacket &out) noexcept
{
    out.l4_offset = static_cast<uint16_t>(l4);
    /* Bytes of this IP packet (or fragment) from the transport header on. */
    const uint32_t segment = l3_end - l4;

    if (out.l4_proto == kProtoTcp) {
        /* RFC 9293 3.1: the fixed header is 20 bytes. */
        if (segment < kTcpMinHeaderLen || len - l4 < kTcpMinHeaderLen) [[unlikely]]
            return reject(out, DropReason::tcp_truncated);
        const uint8_t *tcp = data + l4;
        /* RFC 9293 3.1: Data Offset counts 32-bit words, at least 5, and the
         * header it describes must fit in the segment. A first fragment
         * whose TCP header continues in the next fragment (RFC 1858 "tiny
         * fragment") fails this too. */
        const uint32_t header_len = static_cast<uint32_t>(tcp[12] >> 4) * 4;
        if (header_len < kTcpMinHeaderLen || header_len > segment) [[unlikely]]
            return reject(out, DropReason::tcp_bad_data_offset);
        /* The options must be readable too: they continue in a later mbuf
         * segment, which the worker does not look at. */
        if (header_len > len - l4) [[unlikely]]
            return reject(out, DropReason::tcp_truncated);
        out.src_port = load16(tcp);
        out.dst_port = load16(tcp + 2);
        out.tcp_flags = tcp[13];
        out.payload_offset = static_cast<uint16_t>(l4 + header_len);
        return ParseStatus::ok;
    }

    if (out.l4_proto == kProtoUdp) {
        if (segment < kUdpHeaderLen || len - l4 < kUdpHeaderLen) [[unlikely]]
            return reject(out, DropReason::udp_truncated);
        const uint8_t *udp = data + l4;
        /* RFC 768: Length covers header and data, so it is at least 8 and,
         * for a whole datagram, equals the IP payload. A first fragment
         * carries only part of the datagram, so its Length must exceed the
         * bytes present. A datagram shorter than its IP payload would hide
         * trailing bytes the owner discards: drop it rather than forward. */
        const uint32_t udp_len = load16(udp + 4);
        if (udp_len < kUdpHeaderLen) [[unlikely]]
            return reject(out, DropReason::udp_bad_length);
        if (out.fragment ? udp_len <= segment : udp_len != segment) [[unlikely]]
            return reject(out, DropReason::udp_bad_length);
        out.src_port = load16(udp);
        out.dst_port = load16(udp + 2);
        out.payload_offset = static_cast<uint16_t>(l4 + kUdpHeaderLen);
        return ParseStatus::ok;
    }

    /* ICMP, ICMPv6, GRE, ESP, ...: located but not parsed, no ports. */
    return ParseStatus::ok;
}

ParseStatus parse_ipv4(const uint8_t *data, uint32_t len, uint32_t pkt_len, uint32_t l3,
                       ParsedPacket &out, bool csum_verified) noexcept
{
    if (len - l3 < kIpv4MinHeaderLen) [[unlikely]]
        return reject(out, DropReason::ipv4_truncated);
    const uint8_t *ip = data + l3;

    /* RFC 791 3.1: Version is 4. */
    if ((ip[0] >> 4) != 4) [[unlikely]]
        return reject(out, DropReason::ipv4_bad_version);
    /* RFC 791 3.1: "the minimum value for a correct header is 5". */
    const uint32_t header_len = static_cast<uint32_t>(ip[0] & 0x0F) * 4;
    if (header_len < kIpv4MinHeaderLen) [[unlikely]]
        return reject(out, DropReason::ipv4_bad_ihl);
    /* Options are part of the header: all of it must be readable. */
    if (len - l3 < header_len) [[unlikely]]
        return reject(out, DropReason::ipv4_truncated);
    /* RFC 1812 5.2.2: Total Length covers at least the header and fits in
     * the frame. Bytes beyond it are Ethernet padding (frames are at least
     * 60 bytes), accepted and excluded from l3_len. */
    const uint32_t total_len = load16(ip + 2);
    if (total_len < header_len || total_len > pkt_len - l3) [[unlikely]]
        return reject(out, DropReason::ipv4_bad_total_length);
    /* RFC 1071 1(4): summing the header including its checksum gives all
     * ones when the checksum verifies. */
    if (!csum_verified && ones_complement_sum(ip, header_len) != 0xFFFF) [[unlikely]]
        return reject(out, DropReason::ipv4_bad_checksum);

    out.family = Family::ipv4;
    out.l3_len = static_cast<uint16_t>(total_len);
    out.l4_proto = ip[9];

    /* RFC 791 3.2: a datagram is a fragment when More Fragments is set or
     * Fragment Offset is not zero; only offset 0 carries the transport
     * header. */
    const uint16_t frag = load16(ip + 6);
    out.dont_fragment = (frag & detail::kIpv4DontFragment) != 0;
    const bool later = (frag & detail::kIpv4FragmentOffset) != 0;
    out.fragment = later || (frag & detail::kIpv4MoreFragments) != 0;
    if (later) [[unlikely]] {
        out.later_fragment = true;
        return ParseStatus::ok;
    }
    return parse_transport(data, len, l3 + header_len, l3 + total_len, out);
}

/* Length in bytes of an extension header from its second byte. */
inline uint32_t ipv6_ext_len(uint8_t type, uint8_t len_field) noexcept
{
    /* RFC 8200 4.5: the fragment header is a fixed 8 bytes. */
    if (type == kIpv6ExtFragment)
        return kIpv6FragHeaderLen;
    /* RFC 4302 2.2: AH Payload Len is in 4-octet units, minus 2. */
    if (type == kIpv6ExtAh)
        return (uint32_t{len_field} + 2) * 4;
    /* RFC 8200 4.3, 4.4, 4.6: Hdr Ext Len is in 8-octet units, not counting
     * the first 8. */
    return (uint32_t{len_field} + 1) * 8;
}

ParseStatus parse_ipv6(const uint8_t *data, uint32_t len, uint32_t pkt_len, uint32_t l3,
                       ParsedPacket &out) noexcept
{
    if (len - l3 < kIpv6HeaderLen) [[unlikely]]
        return reject(out, DropReason::ipv6_truncated);
    const uint8_t *ip = data + l3;

    /* RFC 8200 3: Version is 6. */
    if ((ip[0] >> 4) != 6) [[unlikely]]
        return reject(out, DropReason::ipv6_bad_version);
    /* RFC 8200 3: Payload Length is everything after the fixed header; it
     * must fit in the frame, trailing Ethernet padding is excluded. A
     * payload longer than 65535 - 40 exceeds every Ethernet MTU and would
     * not fit l3_len. Jumbograms (RFC 2675, Payload Length 0) need links
     * with an MTU above 64 KiB, which Ethernet is not. */
    const uint32_t payload_len = load16(ip + 4);
    const uint32_t total_len = kIpv6HeaderLen + payload_len;
    if (total_len > pkt_len - l3 || total_len > kMaxOffset) [[unlikely]]
        return reject(out, DropReason::ipv6_bad_payload_length);

    out.family = Family::ipv6;
    out.l3_len = static_cast<uint16_t>(total_len);
    /* IPv6 routers never fragment (RFC 8200 5). */
    out.dont_fragment = true;

    /* Extension headers must lie within the payload and the readable bytes;
     * `off` never passes `limit` (checked for each header below). */
    const uint32_t l3_end = l3 + total_len;
    const uint32_t limit = std::min(l3_end, len);
    uint32_t off = l3 + kIpv6HeaderLen;
    uint8_t next = ip[6];

    /* RFC 8200 4.1: walk the extension headers to the upper-layer header. */
    for (unsigned count = 0;; ++count) {
        switch (next) {
        case kIpv6ExtHopByHop:
        case kIpv6ExtRouting:
        case kIpv6ExtDestOpts:
        case kIpv6ExtFragment:
        case kIpv6ExtAh:
            break;
        default:
            /* Upper layer, ESP (RFC 4303: encrypted, nothing to walk), No
             * Next Header (59) or an unknown type: the chain ends here. */
            out.l4_proto = next;
            return parse_transport(data, len, off, l3_end, out);
        }

        if (count == kMaxIpv6ExtHeaders) [[unlikely]]
            return reject(out, DropReason::ipv6_ext_chain_too_long);
        /* RFC 8200 4.1: hop-by-hop options only right after the IPv6 header. */
        if (next == kIpv6ExtHopByHop && count != 0) [[unlikely]]
            return reject(out, DropReason::ipv6_hop_by_hop_not_first);
        /* Every extension header starts with Next Header and a length byte;
         * the fragment header is 8 bytes, more than that minimum. */
        const uint32_t avail = limit - off;
        if (avail < 2) [[unlikely]]
            return reject(out, DropReason::ipv6_ext_truncated);
        const uint8_t *ext = data + off;

        const uint32_t ext_len = ipv6_ext_len(next, ext[1]);
        if (avail < ext_len) [[unlikely]]
            return reject(out, DropReason::ipv6_ext_truncated);

        if (next == kIpv6ExtFragment) {
            /* RFC 8200 4.5: offset in the top 13 bits, M in the lowest.
             * Offset 0 with M clear is an atomic fragment, a whole packet
             * to be processed as such (RFC 6946 4). A packet is a fragment
             * if any of its fragment headers says so: an atomic one after
             * a real one does not make it whole. */
            const uint16_t frag = load16(ext + 2);
            const bool later = (frag & kIpv6FragOffsetMask) != 0;
            out.fragment = out.fragment || later || (frag & kIpv6FragMore) != 0;
            if (later) {
                /* What follows is fragment data, not headers. */
                out.later_fragment = true;
                out.l4_proto = ext[0];
                return ParseStatus::ok;
            }
        }
        next = ext[0];
        off += ext_len;
    }
}

} // namespace

namespace detail {

ParseStatus parse_packet_general(const uint8_t *data, uint32_t len, uint32_t pkt_len,
                                 ParsedPacket &out, bool ipv4_csum_verified) noexcept
{
    out = ParsedPacket{};
    len = std::min({len, pkt_len, kMaxOffset});

    if (len < kEthHeaderLen) [[unlikely]]
        return reject(out, DropReason::eth_truncated);
    uint32_t off = kEthHeaderLen;
    uint16_t ether_type = load16(data + 12);

    /* IEEE 802.1Q / 802.1ad: an outer S-tag (0x88A8, or 0x8100 as many
     * switches send it) and an inner C-tag; a third tag is not something a
     * load balancer's uplink carries. */
    while (ether_type == kEtherTypeVlan || ether_type == kEtherTypeQinQ) {
        if (out.vlan_count == kMaxVlanTags) [[unlikely]]
            return reject(out, DropReason::vlan_too_many);
        if (len - off < kVlanTagLen) [[unlikely]]
            return reject(out, DropReason::vlan_truncated);
        ether_type = load16(data + off + 2);
        off += kVlanTagLen;
        ++out.vlan_count;
    }
    out.ether_type = ether_type;
    out.l3_offset = static_cast<uint16_t>(off);

    if (ether_type == kEtherTypeIpv4) [[likely]]
        return parse_ipv4(data, len, pkt_len, off, out, ipv4_csum_verified);
    if (ether_type == kEtherTypeIpv6)
        return parse_ipv6(data, len, pkt_len, off, out);
    return ParseStatus::not_ip;
}

} // namespace detail
} // namespace flowhome
