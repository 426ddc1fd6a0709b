/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Encapsulation toward the owner of a connection, and decapsulation of what
 * peers send us.
 *
 * Two formats, chosen per network domain:
 *  - GENEVE (RFC 8926) over UDP (port 6081 by default), outer IPv4 or IPv6,
 *    protocol type 0x6558 (the inner Ethernet frame), with one flowhome option
 *    TLV (class kGeneveOptionClass, type kGeneveOptionType; docs/design.md);
 *  - IP-in-IP: IPv4 protocol 4 / 41 (RFC 2003, RFC 4213) or IPv6 next header
 *    4 / 41 (RFC 2473); the inner Ethernet header is replaced by the outer one.
 *
 * A template holds the whole outer header for one (peer, domain) and is built
 * by the control plane; per packet, encap_packet() writes only the lengths,
 * the outer IPv4 checksum (incrementally) or the IPv6 flow label, the UDP
 * source port (and the UDP checksum over IPv6 where the domain wants one),
 * the option's ingress node, hop count, affinity and service version, the
 * ECN field (and the DSCP, where the domain inherits it) copied from the
 * inner header and, for IP-in-IP, the protocol of the inner family.
 *
 * Threading: build_*() are control-plane functions (may allocate, may throw
 * std::invalid_argument). encap_packet(), decap_packet() and
 * make_packet_too_big() are datapath functions: noexcept, no allocation, they
 * only touch the mbuf they are given. They use rte_mbuf's inline helpers only,
 * so they also run without an EAL on a hand-built mbuf (the unit tests do).
 */
#pragma once

#include <cstdint>
#include <vector>

#include <rte_mbuf.h>

#include "flowhome/addr_table.hpp"
#include "flowhome/config.hpp"
#include "flowhome/drop_reason.hpp"
#include "flowhome/packet.hpp"
#include "flowhome/types.hpp"

namespace flowhome {

/** GENEVE option class from the Experimental Use range (RFC 8926 section 9). */
inline constexpr uint16_t kGeneveOptionClass = 0xFFF0;
/** Option type; the high (critical) bit is clear so that other receivers may skip it. */
inline constexpr uint8_t kGeneveOptionType = 0x46;
/** Bytes of flowhome option data (excluding the 4-byte option header). */
inline constexpr uint8_t kGeneveOptionDataLen = 8;

/** Wire layout of the flowhome GENEVE option data, network byte order. */
struct GeneveFlowhomeOption {
    uint16_t ingress_node;    /**< node that received the packet from the router */
    uint8_t hops;             /**< redirects taken so far, this one included */
    uint8_t flags;            /**< reserved, 0 */
    uint16_t affinity;        /**< stream-affinity code (0: unset) */
    uint16_t service_version; /**< service version of the VIP (0: unset) */
};
static_assert(sizeof(GeneveFlowhomeOption) == kGeneveOptionDataLen);

/** Longest outer header: Ethernet + IPv6 + UDP + GENEVE + option. */
inline constexpr uint16_t kMaxEncapHeader = 14 + 40 + 8 + 8 + 4 + kGeneveOptionDataLen;

/**
 * The precomputed outer header toward one peer in one domain. Two cache
 * lines; the datapath reads it, never writes it.
 */
struct alignas(64) EncapTemplate {
    /** Outer Ethernet .. end of the GENEVE option; for GENEVE, followed by
     * the inner Ethernet header (type IPv4): one copy writes everything
     * before the inner IP header. */
    uint8_t header[kMaxEncapHeader + 14];
    uint8_t header_len; /**< outer header bytes of header[] */
    uint8_t write_len;  /**< bytes copied per packet: header_len + inner Ethernet */
    EncapKind kind;
    Family outer_family;
    bool udp6_zero_checksum;
    uint16_t udp_offset;     /**< 0 for IP-in-IP */
    uint16_t option_offset;  /**< offset of GeneveFlowhomeOption; 0 for IP-in-IP */
    uint16_t ipv4_csum_base; /**< one's-complement sum (RFC 1071, folded, host order) of
                                  the outer IPv4 header with total length and checksum
                                  zero; IP-in-IP: with protocol 4 */
    uint16_t mtu;            /**< largest outer IP packet the port sends */
    uint16_t tx_port;        /**< DPDK port id to send on */
    NodeId peer;
    /** Bits of the inner packet's TOS / traffic class that the outer header
     * takes (the header holds the rest): ECN always (RFC 6040 normal
     * mode), DSCP too when the domain inherits it. */
    uint8_t tos_from_inner;
};
static_assert(sizeof(EncapTemplate) == 128, "two cache lines");

struct TemplateParams {
    NodeId self = kInvalidNode;
    NodeId peer = kInvalidNode;
    MacAddr src_mac; /**< our port's MAC */
    MacAddr dst_mac; /**< next hop toward the peer */
    IpAddr src;      /**< our address, same family as dst */
    IpAddr dst;      /**< the peer's address */
    DomainConfig domain;
    uint16_t mtu = 1500;
    uint16_t tx_port = 0;
    uint8_t ttl = 64;
};

/** Builds a template. Throws std::invalid_argument when src and dst families differ. */
EncapTemplate build_template(const TemplateParams &p);

enum class EncapStatus : uint8_t {
    ok,
    too_big,     /**< would exceed t.mtu; the mbuf is unchanged */
    no_headroom, /**< the mbuf has too little headroom; the mbuf is unchanged */
};

/**
 * What encap_packet() needs to know about the inner packet. Sixteen bytes,
 * passed by value: the x86-64 and arm64 calling conventions carry it in two
 * registers, so the worker does not store it for encap_packet() to load back
 * (a store-forwarding wait at the start of every encapsulation).
 */
struct EncapMeta {
    uint32_t flow_hash; /**< of the inner flow, for the UDP source port */
    uint16_t l3_offset; /**< of the inner IP header in the mbuf */
    uint16_t l3_len;    /**< inner IP total length (padding beyond it is trimmed) */
    Family inner_family;
    uint8_t hops;        /**< hop count to write, this redirect included */
    NodeId ingress_node; /**< who received it from the router (GENEVE option) */
    uint16_t affinity = 0;
    uint16_t service_version = 0;
};
static_assert(sizeof(EncapMeta) == 16, "two registers");

/**
 * Wraps the packet in @p m (an Ethernet frame whose IP header is at
 * meta.l3_offset) in the template's outer header: VLAN tags and Ethernet
 * padding are removed, the inner Ethernet header is rewritten (GENEVE) or
 * replaced (IP-in-IP). The outer UDP source port is 49152 + hash % 16384
 * (RFC 8926 3.3). Outer IPv6 UDP checksums are computed in software unless
 * the domain sends zero checksums. An outer IPv6 header also gets the flow
 * label hash & 0xFFFFF (RFC 6438). Sets m->l2_len and m->l3_len to the outer
 * Ethernet and IP header lengths, and the rest of m->tx_offload to 0.
 *
 * @return no_headroom also when @p meta does not describe @p m (IP header
 *         not in the first segment, or l3_len beyond pkt_len): a caller bug
 *         that cannot be built in this mbuf; m is unchanged in that case too.
 */
inline EncapStatus encap_packet(rte_mbuf *m, const EncapTemplate &t, EncapMeta meta) noexcept;

/**
 * Cuts the frame in @p m to @p end bytes when what lies beyond is Ethernet
 * padding in the last segment; padding spread over segments stays, for the
 * IP lengths to delimit. The usual one-segment mbuf is not walked: its
 * segment link lies in the mbuf's second cache line, which a NIC's receive
 * path leaves cold, and a load waits for a miss where a store does not.
 */
inline void trim_padding(rte_mbuf *m, uint32_t end) noexcept
{
    if (rte_pktmbuf_pkt_len(m) <= end)
        return;
    const uint32_t excess = rte_pktmbuf_pkt_len(m) - end;
    rte_mbuf *last = m->nb_segs == 1 ? m : rte_pktmbuf_lastseg(m);
    if (excess <= rte_pktmbuf_data_len(last)) {
        last->data_len = static_cast<uint16_t>(last->data_len - excess);
        m->pkt_len -= excess;
    }
}

/**
 * Sets the offload lengths of a packet this node built (a redirect, an
 * ICMP error): @p l2 and @p l3, and the rest of m->tx_offload 0, since no
 * other offload of ours applies and a previous use of the mbuf may have left
 * lengths there. One store of the whole word: it lies in the mbuf's second
 * cache line, which a NIC's receive path leaves cold, and setting two of its
 * bit fields would read it first.
 */
inline void set_tx_lengths(rte_mbuf *m, uint16_t l2, uint16_t l3) noexcept
{
    m->tx_offload = rte_mbuf_tx_offload(l2, l3, 0, 0, 0, 0, 0);
}

/** RFC 791: the smallest MTU every IPv4 link must carry; RFC 8200 section 5 for IPv6. */
inline constexpr uint16_t kMinIpv4Mtu = 68;
inline constexpr uint16_t kMinIpv6Mtu = 1280;

/**
 * Bytes a redirect adds to the inner IP packet, outer Ethernet aside: the
 * outer IP header, and for GENEVE the UDP and GENEVE headers, our option and
 * the inner Ethernet header.
 */
constexpr uint16_t encap_overhead(EncapKind kind, Family outer) noexcept
{
    const uint16_t ip = outer == Family::ipv6 ? wire::kIpv6HeaderLen : wire::kIpv4HeaderLen;
    if (kind == EncapKind::ipip)
        return ip;
    return ip + wire::kUdpHeaderLen + wire::kGeneveHeaderLen + 4 + kGeneveOptionDataLen +
           wire::kEthHeaderLen;
}

/** Outer IP length encap_packet() would produce; to decide "too big" early. */
inline uint32_t encapsulated_ip_length(const EncapTemplate &t, const EncapMeta &meta) noexcept
{
    /* Everything written before the inner IP header but the outer Ethernet. */
    return uint32_t{t.write_len} - 14 + meta.l3_len;
}

/**
 * Source addresses we accept encapsulated packets from, mapped to the peer's
 * node id. Built by the control plane; read-only afterwards.
 */
class PeerDirectory {
public:
    /**
     * Throws std::invalid_argument when the address is already present, has
     * no IP family, or @p node is kInvalidNode.
     */
    void add(const IpAddr &addr, NodeId node);
    NodeId find(const IpAddr &addr) const noexcept;
    /** The peer at IPv4 address @p addr_be (as it lies in a header). */
    NodeId find_v4(uint32_t addr_be) const noexcept
    {
        const NodeId *n = v4_.find(addr_be);
        return n != nullptr ? *n : kInvalidNode;
    }
    /** The peer at the IPv6 address whose 16 bytes @p addr points to. */
    NodeId find_v6(const uint8_t *addr) const noexcept
    {
        const NodeId *n = v6_.find(AddrWords6::of(addr));
        return n != nullptr ? *n : kInvalidNode;
    }
    size_t size() const noexcept { return v4_.size() + v6_.size(); }

private:
    AddrTable<uint32_t, NodeId> v4_;
    AddrTable<AddrWords6, NodeId> v6_;
};

/** Our own outer addresses and the GENEVE port we listen on. */
struct DecapConfig {
    std::optional<IpAddr> local_v4;
    std::optional<IpAddr> local_v6;
    uint16_t geneve_port = kGenevePort;
};

/** A node's DecapConfig: its wire port's addresses, its GENEVE domains' port. */
DecapConfig decap_config(const NodeConfig &cfg);

enum class DecapStatus : uint8_t {
    not_encapsulated, /**< not addressed to us as a tunnel: process as is */
    ok,               /**< m now holds the inner Ethernet frame */
    drop,             /**< malformed or from a stranger; reason in DecapResult */
};

/** The hop count of a packet that arrived over IP-in-IP, which carries none:
 *  spent whatever max_hops is, so the packet is not redirected again (two
 *  nodes that disagree on its owner would otherwise pass it back and forth,
 *  each seeing its first hop). */
inline constexpr uint8_t kHopsSpent = 0xFF;

struct DecapResult {
    DecapStatus status = DecapStatus::not_encapsulated;
    DropReason drop{};
    NodeId from_peer = kInvalidNode;    /**< the peer that sent it */
    NodeId ingress_node = kInvalidNode; /**< from the GENEVE option; from_peer for IP-in-IP */
    uint8_t hops = 1;      /**< from the GENEVE option (1 without it); kHopsSpent for IP-in-IP */
    uint8_t outer_ecn = 0; /**< the outer IP header's ECN field, for ecn_decapsulate() */
    uint16_t affinity = 0;
    uint16_t service_version = 0;

    friend constexpr bool operator==(const DecapResult &, const DecapResult &) = default;
};

/** RFC 3168 section 5: the two-bit ECN field, the low bits of the TOS / traffic class. */
inline constexpr uint8_t kEcnNotEct = 0;
inline constexpr uint8_t kEcnEct1 = 1;
inline constexpr uint8_t kEcnEct0 = 2;
inline constexpr uint8_t kEcnCe = 3;
inline constexpr uint8_t kEcnMask = 3;

/** The ECN field of the IP header at @p ip, of @p family: the low bits of
 *  the IPv4 TOS, or of the IPv6 traffic class (bits 4 and 5 of byte 1). */
inline uint8_t ecn_field(const uint8_t *ip, Family family) noexcept
{
    return (family == Family::ipv4 ? ip[1] : ip[1] >> 4) & kEcnMask;
}

/** What ecn_decapsulate() made of a decapsulated packet. */
enum class EcnEgress : uint8_t {
    unchanged, /**< the inner field stands */
    marked,    /**< the inner field took the outer one's mark (CE, or ECT(1)) */
    suspect,   /**< unchanged, in a combination RFC 6040 marks "(!!!)": an outer
                    ECT over a Not-ECT packet, or an outer ECT(1) over a CE one,
                    which no compliant sender or device makes */
    drop,      /**< CE over a packet that is not ECN-capable: header unchanged */
};

/**
 * RFC 6040 section 4.2, at the tunnel's egress: folds the outer header's ECN
 * field @p outer_ecn into the inner IP header at @p ip (of @p family, whose
 * first 20 / 40 bytes the caller has checked): CE is copied onto an ECT or
 * CE inner packet, ECT(1) onto an ECT(0) one, anything else leaves it. An
 * inner IPv4 header's checksum is updated (RFC 1624). An outer Not-ECT
 * leaves every packet unchanged: the caller may skip the call then.
 */
EcnEgress ecn_decapsulate(uint8_t *ip, Family family, uint8_t outer_ecn) noexcept;

/**
 * If @p outer (parsed from @p m) is GENEVE to cfg.geneve_port or IP-in-IP
 * (IPv4 proto 4/41, IPv6 next header 4/41) addressed to one of our local
 * addresses, checks that its source is a peer and strips the outer headers,
 * leaving an Ethernet frame: GENEVE's inner frame (for protocol 0x6558; an
 * Ethernet header is made for GENEVE protocol 0x0800/0x86DD), or for IP-in-IP
 * the outer Ethernet addresses in front of the inner IP packet.
 * Unknown non-critical GENEVE options are skipped; OAM packets and unknown
 * critical options are dropped (RFC 8926 3.5). A GENEVE packet without the
 * flowhome option (a Linux geneve device) gets ingress_node = from_peer and
 * hops = 1. The VNI is not checked. Outer fragments are not_encapsulated
 * (the kernel path reassembles). On ok, the RX checksum flags of m->ol_flags
 * and m->packet_type are cleared: they described the outer packet.
 * On drop and not_encapsulated, m is unchanged. On ok, outer_ecn holds the
 * outer header's ECN field: the caller, which parses the inner header
 * anyway, passes it to ecn_decapsulate() unless it is Not-ECT.
 */
DecapResult decap_packet(rte_mbuf *m, const ParsedPacket &outer, const PeerDirectory &peers,
                         const DecapConfig &cfg) noexcept;

namespace detail {
/**
 * decap_packet()'s fast path: GENEVE as a flowhome peer sends it (untagged,
 * no IPv4 options nor IPv6 extension headers, our option alone, protocol
 * 0x6558), at fixed offsets. For such a frame, true and in @p r what the
 * general path gives; for any other, false, @p r and @p m untouched.
 */
bool decap_plain_geneve(rte_mbuf *m, const ParsedPacket &outer, const PeerDirectory &peers,
                        const DecapConfig &cfg, DecapResult &r) noexcept;
/** decap_packet() without its fast path; for tests that check that both ways agree. */
DecapResult decap_packet_general(rte_mbuf *m, const ParsedPacket &outer, const PeerDirectory &peers,
                                 const DecapConfig &cfg) noexcept;
} // namespace detail

/**
 * Turns @p m, a packet that is too big for @p mtu once encapsulated, into the
 * ICMP error that tells its sender (RFC 1191 "fragmentation needed" with the
 * next-hop MTU for IPv4 with DF set; RFC 8201 / RFC 4443 "packet too big" for
 * IPv6, MTU at least 1280), in place: addressed from @p our_addr to the
 * packet's source, Ethernet addresses swapped, VLAN tags kept, as much of the
 * original as fits in 576 (IPv4) or 1280 (IPv6) bytes.
 *
 * @return false (m unchanged) where no error may be sent: IPv4 without DF,
 *         a non-first IPv4 fragment, an ICMP error itself, a multicast,
 *         broadcast, loopback or unspecified source (IPv6: or IPv4-mapped),
 *         an IPv4 multicast destination or link-layer multicast frame, no
 *         local address of the packet's family, or less than 28 (IPv4) / 48
 *         (IPv6) bytes of headroom: where packet_too_big_due() is false.
 * Segments after the first are freed (the quote ends in the first). The
 * caller rate-limits these errors (RFC 1812 4.3.2.8, RFC 4443 2.4(f)),
 * asking packet_too_big_due() first, so that only errors that would be
 * sent spend or wait for a token.
 */
bool make_packet_too_big(rte_mbuf *m, const ParsedPacket &p, uint16_t mtu,
                         const DecapConfig &local) noexcept;
/** Whether make_packet_too_big() would turn @p m into an error. */
bool packet_too_big_due(const rte_mbuf *m, const ParsedPacket &p,
                        const DecapConfig &local) noexcept;

} // namespace flowhome

/* encap_packet(), inline: the worker compiles it into its redirect. */
#include "flowhome/encap_inline.hpp"
