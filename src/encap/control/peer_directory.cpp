/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What we take tunnelled packets on, and the peers we accept them from. Filled by the control plane
 * (add() may allocate and throw), then read by the workers: lookups are a
 * binary search over a sorted contiguous vector, which for the tens of peers
 * of a fleet touches one or two cache lines and never allocates.
 */
#include "flowhome/encap.hpp"

#include <algorithm>
#include <cstring>
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
    if (addr.family == Family::ipv4) {
        const uint32_t a = addr.v4_be();
        const auto it = std::lower_bound(v4_.begin(), v4_.end(), a,
                                         [](const Entry4 &e, uint32_t k) { return e.addr < k; });
        if (it != v4_.end() && it->addr == a)
            throw std::invalid_argument("peer directory: " + addr.to_string() +
                                        " is already listed (node " + std::to_string(it->node) +
                                        ")");
        v4_.insert(it, Entry4{a, node});
        return;
    }
    if (addr.family == Family::ipv6) {
        const auto it = std::lower_bound(
            v6_.begin(), v6_.end(), addr.bytes,
            [](const Entry6 &e, const std::array<uint8_t, 16> &k) { return e.addr < k; });
        if (it != v6_.end() && it->addr == addr.bytes)
            throw std::invalid_argument("peer directory: " + addr.to_string() +
                                        " is already listed (node " + std::to_string(it->node) +
                                        ")");
        v6_.insert(it, Entry6{addr.bytes, node});
        return;
    }
    throw std::invalid_argument("peer directory: address without an IP family");
}

NodeId PeerDirectory::find(const IpAddr &addr) const noexcept
{
    if (addr.family == Family::ipv4)
        return find_v4(addr.v4_be());
    if (addr.family == Family::ipv6)
        return find_v6(addr.bytes.data());
    return kInvalidNode;
}

NodeId PeerDirectory::find_v4(uint32_t addr_be) const noexcept
{
    const auto it = std::lower_bound(v4_.begin(), v4_.end(), addr_be,
                                     [](const Entry4 &e, uint32_t k) { return e.addr < k; });
    return it != v4_.end() && it->addr == addr_be ? it->node : kInvalidNode;
}

NodeId PeerDirectory::find_v6(const uint8_t *addr) const noexcept
{
    /* Byte-wise comparison: the same order std::array's operator< gave add(). */
    const auto it =
        std::lower_bound(v6_.begin(), v6_.end(), addr, [](const Entry6 &e, const uint8_t *k) {
            return std::memcmp(e.addr.data(), k, 16) < 0;
        });
    return it != v6_.end() && std::memcmp(it->addr.data(), addr, 16) == 0 ? it->node : kInvalidNode;
}

} // namespace flowhome
