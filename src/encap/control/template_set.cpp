/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/template_set.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace flowhome {

void TemplateSet::add(const EncapTemplate &t)
{
    if (t.peer == kInvalidNode || t.peer > kMaxNodeId)
        throw std::invalid_argument(fmt::format("template for invalid node id {}", t.peer));
    if (index_[t.peer] != kNone)
        throw std::invalid_argument(fmt::format("two templates for node {}", t.peer));
    index_[t.peer] = static_cast<uint16_t>(templates_.size());
    templates_.push_back(t);
}

TemplateSet build_template_set(const NodeConfig &cfg, const MacAddr &wire_mac,
                               uint16_t wire_port_id)
{
    const PortConfig *wire = cfg.wire_port();
    if (wire == nullptr)
        throw std::invalid_argument("no wire port");

    TemplateSet set;
    for (const PeerConfig &peer : cfg.peers) {
        const DomainConfig *domain = cfg.domain(peer.domain);
        if (domain == nullptr)
            throw std::invalid_argument(
                fmt::format("peer {}: unknown domain '{}'", peer.id, peer.domain));
        const auto &src = peer.address.family == Family::ipv4 ? wire->ipv4 : wire->ipv6;
        if (!src)
            throw std::invalid_argument(
                fmt::format("peer {}: wire port '{}' has no address of the peer's family", peer.id,
                            wire->name));
        const auto dst_mac = peer.mac ? peer.mac : domain->next_hop_mac;
        if (!dst_mac)
            throw std::invalid_argument(fmt::format(
                "peer {}: no mac and domain '{}' has no next_hop_mac", peer.id, domain->name));

        TemplateParams p;
        p.self = cfg.node_id;
        p.peer = peer.id;
        p.src_mac = wire_mac;
        p.dst_mac = *dst_mac;
        p.src = *src;
        p.dst = peer.address;
        p.domain = *domain;
        p.mtu = wire->mtu;
        p.tx_port = wire_port_id;
        set.add(build_template(p));
    }
    return set;
}

} // namespace flowhome
