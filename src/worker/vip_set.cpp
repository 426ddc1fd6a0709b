/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/vip.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <utility>
#include <stdexcept>

namespace flowhome {

VipSet::VipSet(const std::vector<VipConfig> &vips)
{
    /* Merged per address first. */
    std::map<std::array<uint8_t, 16>, Service> by_addr[2];
    for (const VipConfig &v : vips) {
        if (v.address.family != Family::ipv4 && v.address.family != Family::ipv6)
            throw std::invalid_argument("VIP without an address");
        Service &s = by_addr[v.address.family == Family::ipv6][v.address.bytes];
        if (v.protocol == VipProtocol::any && v.ports.empty())
            s.other = true;
        if (v.protocol != VipProtocol::udp)
            merge_ports(s.tcp, v.ports);
        if (v.protocol != VipProtocol::tcp)
            merge_ports(s.udp, v.ports);
    }
    /* Inserted in the table's own order, each at its end: the maps' byte
     * order is not the words' on a little-endian host. */
    const auto fill = [](auto &table, const auto &merged, auto addr_of) {
        using Addr = decltype(addr_of(nullptr));
        std::vector<std::pair<Addr, const Service *>> sorted;
        for (const auto &[bytes, svc] : merged)
            sorted.emplace_back(addr_of(bytes.data()), &svc);
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto &a, const auto &b) { return a.first < b.first; });
        for (const auto &[addr, svc] : sorted)
            table.insert(addr, *svc);
    };
    fill(v4_, by_addr[0], addr_word4);
    fill(v6_, by_addr[1], AddrWords6::of);
}

void VipSet::merge_ports(Ports &t, const std::vector<uint16_t> &ports)
{
    if (ports.empty()) {
        t.all = true;
        return;
    }
    if (t.set == nullptr)
        t.set = port_sets_.emplace_back(std::make_unique<PortSet>()).get();
    for (uint16_t port : ports)
        t.set->set(port);
}

bool VipSet::serves(const FlowKey &key) const noexcept
{
    /* What match() says of a packet to the VIP's port, in the key's protocol. */
    const Service *svc = nullptr;
    if (key.family == Family::ipv4)
        svc = v4_.find(key.v4.vip_addr);
    else if (key.family == Family::ipv6)
        svc = v6_.find(AddrWords6::of(key.v6.vip_addr));
    return svc != nullptr && svc->match(key.proto(), key.vip_port(), false);
}

} // namespace flowhome
