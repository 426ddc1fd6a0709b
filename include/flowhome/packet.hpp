/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Packet parsing and flow keys: pure functions over bytes, used unchanged by
 * the workers, the unit tests, the fuzzers and the benchmarks.
 *
 * Threading: no shared state; callable from any lcore or thread.
 * Errors: never throw, never read outside [data, data + len). A malformed
 * packet is reported as ParseStatus::drop with a DropReason.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <rte_hash_crc.h>

#include "flowhome/drop_reason.hpp"
#include "flowhome/types.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88A8;
inline constexpr uint16_t kEtherTypeTeb = 0x6558; /* Transparent Ethernet Bridging */

inline constexpr uint8_t kIpv6ExtHopByHop = 0; /* IPv6 next header: hop-by-hop options */
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoIgmp = 2;
inline constexpr uint8_t kProtoIpip = 4;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIpv6 = 41;
inline constexpr uint8_t kProtoIcmpv6 = 58;

inline constexpr uint16_t kGenevePort = 6081;

/** Most IPv6 extension headers the parser walks before giving up. */
inline constexpr unsigned kMaxIpv6ExtHeaders = 8;
/** Most VLAN tags (802.1ad outer + 802.1Q inner). */
inline constexpr unsigned kMaxVlanTags = 2;

/** A frame to a link-layer group (broadcast or multicast): the I/G bit of
 *  its destination address. */
inline bool link_group(const uint8_t *frame) noexcept
{
    return (frame[0] & 0x01) != 0;
}

/** Writes an Ethernet header at @p h: destination, source, EtherType. */
inline void write_eth_header(uint8_t *h, const MacAddr &dst, const MacAddr &src,
                             uint16_t ether_type) noexcept
{
    std::memcpy(h, dst.bytes.data(), 6);
    std::memcpy(h + 6, src.bytes.data(), 6);
    wire::store16(h + 12, ether_type);
}

namespace tcp_flag {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
} // namespace tcp_flag

enum class ParseStatus : uint8_t {
    ok,     /**< IPv4/IPv6 packet, fields below valid */
    not_ip, /**< well-formed Ethernet, but not IP (ARP, LLDP, ...) */
    drop,   /**< malformed; ParsedPacket::drop names why */
};

/**
 * Offsets and fields of a parsed frame. Offsets are from the start of the
 * Ethernet header. Addresses are not copied: read them at l3_offset.
 */
struct ParsedPacket {
    uint16_t l3_offset = 0;      /**< IP header */
    uint16_t l4_offset = 0;      /**< transport header (after IPv6 extensions); 0 if none */
    uint16_t l3_len = 0;         /**< IP total length: header + payload, padding excluded */
    uint16_t ether_type = 0;     /**< innermost ether type */
    uint16_t src_port = 0;       /**< host order; 0 unless TCP/UDP first fragment */
    uint16_t dst_port = 0;       /**< host order */
    uint16_t payload_offset = 0; /**< first byte after the TCP/UDP header; 0 if none */
    Family family = Family::none;
    uint8_t l4_proto = 0;  /**< final upper-layer protocol number */
    uint8_t tcp_flags = 0; /**< TCP flags byte (tcp_flag::*) */
    uint8_t vlan_count = 0;
    bool fragment = false;       /**< any fragment, first or not */
    bool later_fragment = false; /**< fragment offset != 0: no transport header */
    bool dont_fragment = false;  /**< IPv4 DF bit (always true for IPv6) */
    DropReason drop{};           /**< valid when status is drop */

    friend constexpr bool operator==(const ParsedPacket &, const ParsedPacket &) = default;
};

/**
 * Parses Ethernet (up to two VLAN tags), IPv4 (options, fragments, header
 * checksum verified unless @p ipv4_csum_verified), IPv6 (extension chain up
 * to the transport header, fragments), then TCP or UDP.
 *
 * @param data  first byte of the Ethernet header
 * @param len   bytes readable at @p data (the contiguous first segment)
 * @param pkt_len total frame length (>= len for multi-segment frames); the IP
 *        length is checked against it, headers against @p len
 * @param ipv4_csum_verified the NIC already verified the IPv4 checksum
 */
inline ParseStatus parse_packet(const uint8_t *data, uint32_t len, uint32_t pkt_len,
                                ParsedPacket &out, bool ipv4_csum_verified = false) noexcept;

namespace detail {
/** parse_packet without its fast paths for plain IPv4 and IPv6 TCP/UDP frames; for tests
 * that check that both ways agree. */
ParseStatus parse_packet_general(const uint8_t *data, uint32_t len, uint32_t pkt_len,
                                 ParsedPacket &out, bool ipv4_csum_verified = false) noexcept;

/* Offsets and lengths are stored as uint16_t in ParsedPacket. */
inline constexpr uint32_t kMaxOffset = 0xFFFF;
inline constexpr uint16_t kIpv4DontFragment = 0x4000;
inline constexpr uint16_t kIpv4MoreFragments = 0x2000;
inline constexpr uint16_t kIpv4FragmentOffset = 0x1FFF;

/* What a fast path below found in a plain frame's IP header, untagged
 * Ethernet before it. */
struct PlainL3 {
    Family family;
    uint16_t l3_len;
    bool dont_fragment;
};

/*
 * The TCP or UDP header at @p l4 of a plain frame (one of the fast paths
 * below), whose IP packet is not a fragment and carries @p segment bytes
 * from the transport header on: the general path's rules for it. Sets
 * every field of @p out from it and @p ip; false, leaving @p out partly
 * written, for any other protocol or a header that breaks a rule. The
 * caller checked that 8 bytes at @p l4 are readable.
 */
inline bool parse_plain_transport(const uint8_t *data, uint32_t len, uint32_t l4, uint32_t segment,
                                  uint8_t proto, PlainL3 ip, ParsedPacket &out) noexcept
{
    const uint8_t *l4h = data + l4;
    uint32_t payload;
    if (proto == kProtoTcp) {
        if (segment < wire::kTcpMinHeaderLen || len < l4 + wire::kTcpMinHeaderLen)
            return false;
        const uint32_t header_len = static_cast<uint32_t>(l4h[12] >> 4) * 4;
        if (header_len < wire::kTcpMinHeaderLen || header_len > segment || header_len > len - l4)
            return false;
        out.tcp_flags = l4h[13];
        payload = l4 + header_len;
    } else if (proto == kProtoUdp) {
        if (segment < wire::kUdpHeaderLen || wire::load16(l4h + 4) != segment)
            return false;
        out.tcp_flags = 0;
        payload = l4 + wire::kUdpHeaderLen;
    } else {
        return false;
    }
    out.l3_offset = wire::kEthHeaderLen;
    out.l3_len = ip.l3_len;
    out.ether_type = ip.family == Family::ipv4 ? kEtherTypeIpv4 : kEtherTypeIpv6;
    out.family = ip.family;
    out.dont_fragment = ip.dont_fragment;
    out.l4_offset = static_cast<uint16_t>(l4);
    out.src_port = wire::load16(l4h);
    out.dst_port = wire::load16(l4h + 2);
    out.payload_offset = static_cast<uint16_t>(payload);
    out.l4_proto = proto;
    out.vlan_count = 0;
    out.fragment = false;
    out.later_fragment = false;
    out.drop = DropReason{};
    return true;
}

/*
 * The frame nearly every packet is: untagged Ethernet, a 20-byte IPv4 header,
 * not a fragment, TCP or UDP. The same rules as the general path below,
 * applied in one pass over the fixed offsets, with the same result; any
 * other frame, and any frame that breaks a rule, returns false and goes the
 * general way, which names the reason. `len` is already capped.
 */
inline bool parse_plain_ipv4(const uint8_t *data, uint32_t len, uint32_t pkt_len, ParsedPacket &out,
                             bool csum_verified) noexcept
{
    constexpr uint32_t l3 = wire::kEthHeaderLen;
    constexpr uint32_t l4 = l3 + wire::kIpv4HeaderLen;
    if (len < l4 + wire::kUdpHeaderLen || wire::load16(data + 12) != kEtherTypeIpv4 ||
        data[l3] != 0x45)
        return false;
    const uint8_t *ip = data + l3;
    const uint32_t total_len = wire::load16(ip + 2);
    const uint16_t frag = wire::load16(ip + 6);
    /* A total length below the header's wraps the segment around, and
     * fails the same test as one beyond the frame (pkt_len >= len > l4). */
    const uint32_t segment = total_len - wire::kIpv4HeaderLen;
    if (segment > pkt_len - l4 || (frag & (kIpv4MoreFragments | kIpv4FragmentOffset)) != 0)
        return false;
    if (!csum_verified && !wire::ipv4_base_header_valid(ip))
        return false;
    return parse_plain_transport(
        data, len, l4, segment, ip[9],
        {Family::ipv4, static_cast<uint16_t>(total_len), (frag & kIpv4DontFragment) != 0}, out);
}

/*
 * The same for IPv6: untagged, no extension header, TCP or UDP. Without
 * it every IPv6 packet took the general path's header walk.
 */
inline bool parse_plain_ipv6(const uint8_t *data, uint32_t len, uint32_t pkt_len,
                             ParsedPacket &out) noexcept
{
    constexpr uint32_t l3 = wire::kEthHeaderLen;
    constexpr uint32_t l4 = l3 + wire::kIpv6HeaderLen;
    if (len < l4 + wire::kUdpHeaderLen || wire::load16(data + 12) != kEtherTypeIpv6 ||
        (data[l3] >> 4) != 6)
        return false;
    const uint8_t *ip = data + l3;
    const uint32_t payload_len = wire::load16(ip + 4);
    const uint32_t total_len = wire::kIpv6HeaderLen + payload_len;
    if (total_len > pkt_len - l3 || total_len > kMaxOffset)
        return false;
    /* IPv6 routers never fragment (RFC 8200 5). */
    return parse_plain_transport(data, len, l4, payload_len, ip[6],
                                 {Family::ipv6, static_cast<uint16_t>(total_len), true}, out);
}
} // namespace detail

/*
 * Inline, with its fast paths, in the worker's burst loop: the fields it
 * finds stay in registers for the VIP match and the key that come next,
 * instead of being stored here and loaded back there.
 */
inline ParseStatus parse_packet(const uint8_t *data, uint32_t len, uint32_t pkt_len,
                                ParsedPacket &out, bool ipv4_csum_verified) noexcept
{
    /* Bytes past pkt_len are not part of the frame, and every header must
     * start within the first 64 KiB for its offset to fit a uint16_t (an
     * mbuf segment holds at most 65535 bytes anyway). */
    len = len < pkt_len ? len : pkt_len;
    len = len < detail::kMaxOffset ? len : detail::kMaxOffset;
    if (detail::parse_plain_ipv4(data, len, pkt_len, out, ipv4_csum_verified)) [[likely]]
        return ParseStatus::ok;
    if (detail::parse_plain_ipv6(data, len, pkt_len, out))
        return ParseStatus::ok;
    return detail::parse_packet_general(data, len, pkt_len, out, ipv4_csum_verified);
}

/**
 * Canonical key of an IPv4 connection toward a VIP: the client's address and
 * port, the VIP's address and port, the protocol. Network byte order.
 * Sized to 16 bytes so that an rte_hash key slot stays small.
 */
struct FlowKey4 {
    uint32_t client_addr;
    uint32_t vip_addr;
    uint16_t client_port;
    uint16_t vip_port;
    uint8_t proto;
    uint8_t pad[3];
};
static_assert(sizeof(FlowKey4) == 16);

/**
 * As FlowKey4 for IPv6. Padded from 37 to 48 bytes: with rte_hash's 8-byte
 * data word in front, a key slot is then 56 bytes rounded up to 64, one
 * cache line (a 40-byte key gives 48-byte slots, half of which straddle two
 * lines, each a miss of its own in a large table), and rte_hash compares it
 * with its 48-byte vector compare instead of memcmp. flow_hash() reads the
 * first kFlowKey6HashBytes only: the last 8 bytes are always zero.
 */
struct FlowKey6 {
    uint8_t client_addr[16];
    uint8_t vip_addr[16];
    uint16_t client_port;
    uint16_t vip_port;
    uint8_t proto;
    uint8_t pad[11];
};
static_assert(sizeof(FlowKey6) == 48);
inline constexpr size_t kFlowKey6HashBytes = 40;

/** A connection identifier of either family. */
struct FlowKey {
    Family family = Family::none;
    /* 8-byte aligned: rte_hash_crc reads keys in 8-byte words. */
    union alignas(8) {
        FlowKey4 v4;
        FlowKey6 v6;
    };

    FlowKey() noexcept { std::memset(&v6, 0, sizeof(v6)); }
    static FlowKey make4(uint32_t client_be, uint16_t client_port_be, uint32_t vip_be,
                         uint16_t vip_port_be, uint8_t proto) noexcept;
    static FlowKey make6(const uint8_t *client, uint16_t client_port_be, const uint8_t *vip,
                         uint16_t vip_port_be, uint8_t proto) noexcept;

    /** The key of @p f stored at @p bytes (an rte_hash key slot: 16 or 48 bytes). */
    static FlowKey from_key_bytes(Family f, const void *bytes) noexcept
    {
        FlowKey k;
        k.family = f;
        if (f == Family::ipv6)
            std::memcpy(&k.v6, bytes, sizeof(k.v6));
        else
            std::memcpy(&k.v4, bytes, sizeof(k.v4));
        return k;
    }

    /** The bytes rte_hash stores and compares: the 16- or 48-byte struct, pad included. */
    const void *bytes() const noexcept
    {
        return family == Family::ipv4 ? static_cast<const void *>(&v4)
                                      : static_cast<const void *>(&v6);
    }
    /** sizeof(FlowKey4) or sizeof(FlowKey6); 0 for Family::none. */
    size_t size() const noexcept
    {
        switch (family) {
        case Family::ipv4:
            return sizeof(FlowKey4);
        case Family::ipv6:
            return sizeof(FlowKey6);
        case Family::none:
            break;
        }
        return 0;
    }

    IpAddr client() const noexcept;
    IpAddr vip() const noexcept;
    uint16_t client_port() const noexcept; /**< host order */
    uint16_t vip_port() const noexcept;    /**< host order */
    uint8_t proto() const noexcept;
    /** "tcp 192.0.2.1:1234 -> 198.51.100.1:80" */
    std::string to_string() const;

    friend bool operator==(const FlowKey &a, const FlowKey &b) noexcept;
};

/**
 * Builds the canonical key of a parsed IPv4/IPv6 TCP/UDP packet whose
 * destination is the VIP: source = client, destination = VIP.
 * Precondition: parse_packet returned ok and !later_fragment.
 */
inline FlowKey flow_key_of(const uint8_t *frame, const ParsedPacket &p) noexcept;

/**
 * Writes the key of @p p into @p k, as flow_key_of() builds it, and returns
 * its flow_hash(): the workers' way, with no temporary.
 * Precondition: as flow_key_of(); p.family is ipv4 or ipv6.
 */
inline uint32_t make_flow_key(FlowKey &k, const uint8_t *frame, const ParsedPacket &p) noexcept;

/**
 * The flow an ICMP or ICMPv6 error to a VIP is about. The error quotes a
 * packet of the flow's replies (from the VIP's address and port to the
 * client's), so the flow is the quote's destination toward its source, TCP
 * or UDP: ICMP destination unreachable (fragmentation needed among them),
 * time exceeded, parameter problem; ICMPv6 destination unreachable, packet
 * too big, time exceeded, parameter problem. @p len: bytes readable at
 * @p frame. False for any other ICMP message, a quote too short to hold
 * the ports, a quoted fragment past the first, or another protocol.
 */
bool icmp_error_flow(const uint8_t *frame, uint32_t len, const ParsedPacket &p,
                     FlowKey &key) noexcept;

/** Seed of flow_hash(); also the ownership table's hash seed, so one hash serves both. */
inline constexpr uint32_t kFlowHashSeed = 0x666c6f77; /* "flow" */

/**
 * 32-bit hash of a key: rte_hash_crc (CRC32-C) over the 16-byte IPv4 key or
 * the first 40 bytes of the IPv6 key
 * with kFlowHashSeed. Equal on every node and every build; used for the
 * ownership table lookup, the outer UDP source port and consistent hashing.
 */
inline uint32_t flow_hash(const FlowKey &key) noexcept;

/**
 * True for a packet that may open a connection: TCP SYN without ACK, RST or
 * FIN (SYN+FIN opens nothing: Linux discards it, scanners send it), or UDP.
 */
constexpr bool is_connection_opening(const ParsedPacket &p) noexcept
{
    if (p.l4_proto == kProtoTcp)
        return (p.tcp_flags & (tcp_flag::syn | tcp_flag::ack | tcp_flag::rst | tcp_flag::fin)) ==
               tcp_flag::syn;
    return p.l4_proto == kProtoUdp;
}

/**
 * RFC 1071 one's-complement sum over bytes, folded, not inverted. Host order:
 * the big-endian 16-bit words added as numbers, an odd last byte padded with
 * zero; @p initial (host order, e.g. a previous sum) is added in.
 */
uint16_t ones_complement_sum(const void *data, size_t len, uint32_t initial = 0) noexcept;
/**
 * RFC 1071 Internet checksum (inverted sum) of an IPv4 header, host order:
 * store it with wire::be16. The checksum field counts as zero whatever
 * it holds, so the result is the value that belongs there.
 * Precondition: @p header_len >= 20.
 */
uint16_t ipv4_header_checksum(const uint8_t *header, size_t header_len) noexcept;

/* ---- per-packet helpers, inline: the workers call them for every packet ---- */

inline FlowKey FlowKey::make4(uint32_t client_be, uint16_t client_port_be, uint32_t vip_be,
                              uint16_t vip_port_be, uint8_t proto) noexcept
{
    FlowKey k;
    k.family = Family::ipv4;
    k.v4.client_addr = client_be;
    k.v4.vip_addr = vip_be;
    k.v4.client_port = client_port_be;
    k.v4.vip_port = vip_port_be;
    k.v4.proto = proto;
    return k;
}

inline FlowKey FlowKey::make6(const uint8_t *client, uint16_t client_port_be, const uint8_t *vip,
                              uint16_t vip_port_be, uint8_t proto) noexcept
{
    FlowKey k;
    k.family = Family::ipv6;
    std::memcpy(k.v6.client_addr, client, sizeof(k.v6.client_addr));
    std::memcpy(k.v6.vip_addr, vip, sizeof(k.v6.vip_addr));
    k.v6.client_port = client_port_be;
    k.v6.vip_port = vip_port_be;
    k.v6.proto = proto;
    return k;
}

inline uint32_t make_flow_key(FlowKey &k, const uint8_t *frame, const ParsedPacket &p) noexcept
{
    /*
     * The key's words straight from the header, stored whole and hashed from
     * registers: no temporary key, and no load of what was just stored in
     * narrower pieces (a store-forwarding stall on every packet otherwise).
     * The addresses lie in the header as FlowKey4/6 lay them out: source
     * then destination, from byte 12 (IPv4) or 8 (IPv6).
     */
    const uint8_t *ip = frame + p.l3_offset;
    const uint64_t ports_proto = uint64_t{wire::be16(p.src_port)} |
                                 uint64_t{wire::be16(p.dst_port)} << 16 |
                                 uint64_t{p.l4_proto} << 32;
    auto *out = reinterpret_cast<uint8_t *>(&k.v6);
    uint64_t w[4];
    uint32_t crc = kFlowHashSeed;
    k.family = p.family == Family::ipv4 ? Family::ipv4 : Family::ipv6;
    if (p.family == Family::ipv4) {
        std::memcpy(w, ip + 12, 8);
        std::memcpy(out, w, 8);
        std::memcpy(out + 8, &ports_proto, 8);
        /* The rest of the union stays zero, as FlowKey() leaves it. */
        std::memset(out + sizeof(FlowKey4), 0, sizeof(FlowKey6) - sizeof(FlowKey4));
        crc = rte_hash_crc_8byte(w[0], crc);
        return rte_hash_crc_8byte(ports_proto, crc);
    }
    static_assert(kFlowKey6HashBytes == 40, "addresses, then the ports word");
    std::memcpy(w, ip + 8, 32);
    std::memcpy(out, w, 32);
    std::memcpy(out + 32, &ports_proto, 8);
    std::memset(out + kFlowKey6HashBytes, 0, sizeof(FlowKey6) - kFlowKey6HashBytes);
    for (uint64_t word : w)
        crc = rte_hash_crc_8byte(word, crc);
    return rte_hash_crc_8byte(ports_proto, crc);
}

inline FlowKey flow_key_of(const uint8_t *frame, const ParsedPacket &p) noexcept
{
    FlowKey k;
    make_flow_key(k, frame, p);
    return k;
}

inline uint32_t flow_hash(const FlowKey &key) noexcept
{
    /* CRC32-C (Castagnoli) of the key bytes, 8 at a time: for lengths that
     * are multiples of 8 this is exactly rte_hash_crc(bytes, size,
     * kFlowHashSeed), the ownership table's hash function, in every DPDK
     * version (older ones treated a tail under 8 bytes differently). It is
     * written out because rte_hash_crc() casts the key to uint64_t * and the
     * key here is only 4-byte aligned; memcpy keeps the loads defined. The
     * SSE4.2 instruction and DPDK's table fallback give identical values,
     * and the seed is fixed, so every node and build agrees. */
    static_assert(sizeof(FlowKey4) % 8 == 0 && kFlowKey6HashBytes % 8 == 0);
    const auto *bytes = static_cast<const uint8_t *>(key.bytes());
    const size_t size = key.family == Family::ipv6 ? kFlowKey6HashBytes : key.size();
    uint32_t crc = kFlowHashSeed;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t word;
        std::memcpy(&word, bytes + i, sizeof(word));
        crc = rte_hash_crc_8byte(word, crc);
    }
    return crc;
}

} // namespace flowhome
