/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/vip.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <type_traits>
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
    /* The maps' byte order is the IPv6 words' only on a big-endian host:
     * sorted again the way Table::find() searches. */
    const auto fill = [](auto &table, const auto &merged, auto addr_of) {
        using Addr = std::remove_reference_t<decltype(table.addrs[0])>;
        std::vector<std::pair<Addr, Service>> sorted;
        for (const auto &[bytes, svc] : merged)
            sorted.emplace_back(addr_of(bytes.data()), svc);
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto &a, const auto &b) { return a.first < b.first; });
        for (const auto &[addr, svc] : sorted) {
            table.addrs.push_back(addr);
            table.services.push_back(svc);
        }
    };
    fill(v4_, by_addr[0], [](const uint8_t *a) {
        uint32_t w;
        std::memcpy(&w, a, sizeof(w));
        return w;
    });
    fill(v6_, by_addr[1], Words6::of);
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
        svc = v6_.find(Words6::of(key.v6.vip_addr));
    return svc != nullptr && svc->match(key.proto(), key.vip_port(), false);
}

} // namespace flowhome
