/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Membership reports for the gossip group: IGMPv3 (RFC 3376) for an IPv4
 * group, MLDv2 (RFC 3810) for an IPv6 one. The node's NIC belongs to DPDK,
 * so no kernel reports the group for it; a switch that snoops IGMP or MLD
 * forwards a group only to the ports that reported it. Each report carries
 * one group record without sources: EXCLUDE {} is "I want the group from
 * every source", INCLUDE {} is "none".
 *
 * Threading: pure functions, any thread. No allocation.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "flowhome/types.hpp"

namespace flowhome {

enum class GroupReport : uint8_t {
    join,    /**< CHANGE_TO_EXCLUDE_MODE {}: the state change of joining */
    current, /**< MODE_IS_EXCLUDE {}: the current state, repeated */
    leave,   /**< CHANGE_TO_INCLUDE_MODE {}: the state change of leaving */
};

/** Longest report build_group_report() writes (MLDv2, Ethernet included). */
inline constexpr size_t kGroupReportMaxLen = 14 + 40 + 8 + 8 + 20;

/** RFC 4291 2.5.1 / appendix A: fe80::/64 with the modified EUI-64 of @p mac. */
IpAddr link_local_of(const MacAddr &mac) noexcept;

/** RFC 1112 6.4 / RFC 2464 7: the Ethernet address of multicast group @p group. */
MacAddr multicast_mac(const IpAddr &group) noexcept;

/**
 * Whether no router forwards @p group, whatever the TTL: IPv4's local
 * network control block 224.0.0.0/24 (RFC 5771 4), IPv6 groups of scope 2
 * (link-local) or less (RFC 4291 2.7).
 */
bool link_local_group(const IpAddr &group) noexcept;

/**
 * Whether @p group is reported at all. Not the groups a switch floods
 * whatever it snoops, for which RFC 3376 5 and RFC 3810 6 forbid reports:
 * IPv4's local network control block 224.0.0.0/24 (RFC 4541 2.1.2), IPv6's
 * all-nodes group ff02::1; nor IPv6 groups of scope 0 (reserved) or 1
 * (interface-local), which never leave the node.
 */
bool reportable(const IpAddr &group) noexcept;

/**
 * Writes the Ethernet frame of a report about @p group into @p out and
 * returns its length, or 0 when @p out is shorter than kGroupReportMaxLen
 * or @p group is not reportable().
 *
 * IPv4: to 224.0.0.22 (all IGMPv3 routers) from @p src4, TTL 1, IP Router
 * Alert (RFC 2113), as RFC 3376 4 asks. IPv6: to ff02::16 (all MLDv2
 * routers) from the link-local address of @p src_mac (RFC 3810 5: a report
 * comes from a link-local source), hop limit 1, Router Alert in a hop-by-hop
 * header (RFC 2711). @p src4 is not read for an IPv6 group.
 */
size_t build_group_report(std::span<uint8_t> out, const MacAddr &src_mac, const IpAddr &src4,
                          const IpAddr &group, GroupReport kind) noexcept;

} // namespace flowhome
