/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Every reason a worker drops a packet. Each value has a per-worker counter
 * and a stable name used in statistics output and documentation
 * (docs/operations.md lists them). Parser checks are named after the rule
 * they enforce.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace flowhome {

enum class DropReason : uint8_t {
    eth_truncated,
    vlan_truncated,
    vlan_too_many,
    ipv4_truncated,
    ipv4_bad_version,
    ipv4_bad_ihl,
    ipv4_bad_total_length,
    ipv4_bad_checksum,
    ipv6_truncated,
    ipv6_bad_version,
    ipv6_bad_payload_length,
    ipv6_ext_truncated,
    ipv6_ext_chain_too_long,
    ipv6_hop_by_hop_not_first,
    tcp_truncated,
    tcp_bad_data_offset,
    udp_truncated,
    udp_bad_length,
    vip_fragment,
    vip_link_group,
    decap_unknown_peer,
    geneve_truncated,
    geneve_bad_version,
    geneve_bad_protocol,
    geneve_critical_option,
    inner_malformed,
    decap_ce_not_ect,
    miss_policy_drop,
    hop_limit,
    owner_unreachable,
    encap_too_big,
    no_headroom,
    tx_full_wire,
    tx_full_local,
    no_local_port,
    gossip_ring_full,
    rx_chained,
};

struct DropReasonInfo {
    DropReason reason;
    std::string_view name;
    std::string_view text;
};

/** Name and description of every drop reason, in enum order. */
inline constexpr std::array kDropReasons{
    DropReasonInfo{DropReason::eth_truncated, "eth_truncated",
                   "frame shorter than an Ethernet header"},
    DropReasonInfo{DropReason::vlan_truncated, "vlan_truncated", "VLAN tag cut short"},
    DropReasonInfo{DropReason::vlan_too_many, "vlan_too_many", "more than two VLAN tags"},
    DropReasonInfo{DropReason::ipv4_truncated, "ipv4_truncated", "IPv4 header cut short"},
    DropReasonInfo{DropReason::ipv4_bad_version, "ipv4_bad_version", "IPv4 version field is not 4"},
    DropReasonInfo{DropReason::ipv4_bad_ihl, "ipv4_bad_ihl", "IPv4 header length below 20 bytes"},
    DropReasonInfo{DropReason::ipv4_bad_total_length, "ipv4_bad_total_length",
                   "IPv4 total length below header or beyond frame"},
    DropReasonInfo{DropReason::ipv4_bad_checksum, "ipv4_bad_checksum",
                   "IPv4 header checksum does not verify"},
    DropReasonInfo{DropReason::ipv6_truncated, "ipv6_truncated", "IPv6 header cut short"},
    DropReasonInfo{DropReason::ipv6_bad_version, "ipv6_bad_version", "IPv6 version field is not 6"},
    DropReasonInfo{DropReason::ipv6_bad_payload_length, "ipv6_bad_payload_length",
                   "IPv6 payload length beyond frame"},
    DropReasonInfo{DropReason::ipv6_ext_truncated, "ipv6_ext_truncated",
                   "IPv6 extension header cut short"},
    DropReasonInfo{DropReason::ipv6_ext_chain_too_long, "ipv6_ext_chain_too_long",
                   "IPv6 extension header chain too long"},
    DropReasonInfo{DropReason::ipv6_hop_by_hop_not_first, "ipv6_hop_by_hop_not_first",
                   "IPv6 hop-by-hop options after another extension header"},
    DropReasonInfo{DropReason::tcp_truncated, "tcp_truncated", "TCP header cut short"},
    DropReasonInfo{DropReason::tcp_bad_data_offset, "tcp_bad_data_offset",
                   "TCP data offset below 5 or beyond the segment"},
    DropReasonInfo{DropReason::udp_truncated, "udp_truncated", "UDP header cut short"},
    DropReasonInfo{DropReason::udp_bad_length, "udp_bad_length",
                   "UDP length field inconsistent with the IP length"},
    DropReasonInfo{DropReason::vip_fragment, "vip_fragment",
                   "IP fragment addressed to a VIP (no ports to key on)"},
    DropReasonInfo{DropReason::vip_link_group, "vip_link_group",
                   "packet for a VIP (or tunnelled to this node for one) in a link-layer "
                   "broadcast or multicast frame"},
    DropReasonInfo{DropReason::decap_unknown_peer, "decap_unknown_peer",
                   "encapsulated packet from an address that is not a peer"},
    DropReasonInfo{DropReason::geneve_truncated, "geneve_truncated",
                   "GENEVE header or options cut short"},
    DropReasonInfo{DropReason::geneve_bad_version, "geneve_bad_version", "GENEVE version is not 0"},
    DropReasonInfo{DropReason::geneve_bad_protocol, "geneve_bad_protocol",
                   "GENEVE protocol type not Ethernet, IPv4 or IPv6"},
    DropReasonInfo{DropReason::geneve_critical_option, "geneve_critical_option",
                   "GENEVE OAM packet or unknown critical option"},
    DropReasonInfo{DropReason::inner_malformed, "inner_malformed",
                   "decapsulated inner packet is malformed"},
    DropReasonInfo{DropReason::decap_ce_not_ect, "decap_ce_not_ect",
                   "tunnel marked congestion (CE) on an inner packet that is not ECN-capable "
                   "(RFC 6040)"},
    DropReasonInfo{DropReason::miss_policy_drop, "miss_policy_drop",
                   "no owner record mid-connection; miss policy is drop"},
    DropReasonInfo{DropReason::hop_limit, "hop_limit",
                   "redirected packet would be redirected again past the hop limit"},
    DropReasonInfo{DropReason::owner_unreachable, "owner_unreachable",
                   "owner has no encapsulation template"},
    DropReasonInfo{DropReason::encap_too_big, "encap_too_big",
                   "encapsulated packet would exceed the port MTU"},
    DropReasonInfo{DropReason::no_headroom, "no_headroom",
                   "no mbuf headroom for the encapsulation header"},
    DropReasonInfo{DropReason::tx_full_wire, "tx_full_wire",
                   "wire port's transmit queue full (a redirect, an ICMP error, a gossip frame, "
                   "the local port's traffic to the wire)"},
    DropReasonInfo{DropReason::tx_full_local, "tx_full_local", "local port's transmit queue full"},
    DropReasonInfo{DropReason::no_local_port, "no_local_port",
                   "local delivery with no local port configured"},
    DropReasonInfo{DropReason::gossip_ring_full, "gossip_ring_full",
                   "gossip frame dropped: the control lcore's hand-off ring is full"},
    DropReasonInfo{DropReason::rx_chained, "rx_chained",
                   "frame received in several mbufs (longer than any port's MTU allows) that "
                   "is not a gossip frame for the control lcore"},
};

inline constexpr size_t kDropReasonCount = kDropReasons.size();

constexpr bool drop_reason_table_in_order() noexcept
{
    for (size_t i = 0; i < kDropReasons.size(); ++i)
        if (static_cast<size_t>(kDropReasons[i].reason) != i)
            return false;
    return true;
}
static_assert(drop_reason_table_in_order(), "kDropReasons must follow the enum order");

/** Stable snake_case name, e.g. "ipv4_bad_checksum". */
constexpr std::string_view drop_reason_name(DropReason r) noexcept
{
    return kDropReasons[static_cast<size_t>(r)].name;
}

/** One-line human description. */
constexpr std::string_view drop_reason_text(DropReason r) noexcept
{
    return kDropReasons[static_cast<size_t>(r)].text;
}

} // namespace flowhome
