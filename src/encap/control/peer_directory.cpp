/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What we take tunnelled packets on, and the peers we accept them from. Filled by the control plane
 * (add() may allocate and throw), then read by the workers: lookups are a
 * branch-free binary search over sorted packed addresses (AddrTable), which
 * for the tens of peers of a fleet touches one or two cache lines and never
 * allocates.
 */
#include "flowhome/encap.hpp"

#include <stdexcept>
#include <string>

namespace flowhome {

DecapConfig decap_config(const NodeConfig &cfg)
{
    DecapConfig d;
    if (const PortConfig *wire = cfg.wire_port()) {
        d.local_v4 = wire->ipv4;
        d.local_v6 = wire->ipv6;
    }
    /* Where our peers send GENEVE to us: the port of the domains they reach us in. */
    d.geneve_port = cfg.geneve_receive_port();
    return d;
}

void PeerDirectory::add(const IpAddr &addr, NodeId node)
{
    if (node == kInvalidNode)
        throw std::invalid_argument("peer directory: " + addr.to_string() +
                                    " mapped to the invalid node id 0");
    if (addr.family != Family::ipv4 && addr.family != Family::ipv6)
        throw std::invalid_argument("peer directory: address without an IP family");
    const bool added = addr.family == Family::ipv4
                           ? v4_.insert(addr.v4_be(), node)
                           : v6_.insert(AddrWords6::of(addr.bytes.data()), node);
    if (!added)
        throw std::invalid_argument("peer directory: " + addr.to_string() +
                                    " is already listed (node " + std::to_string(find(addr)) + ")");
}

NodeId PeerDirectory::find(const IpAddr &addr) const noexcept
{
    if (addr.family == Family::ipv4)
        return find_v4(addr.v4_be());
    if (addr.family == Family::ipv6)
        return find_v6(addr.bytes.data());
    return kInvalidNode;
}

} // namespace flowhome
