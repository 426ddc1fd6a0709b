/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/vip.hpp"

#include <cstring>
#include <stdexcept>

namespace flowhome {

VipSet::VipSet(const std::vector<VipConfig> &vips)
{
    for (const VipConfig &v : vips) {
        Entry e{};
        e.addr = v.address.bytes;
        std::memcpy(&e.addr4, e.addr.data(), sizeof(e.addr4));
        e.protocol = v.protocol;
        if (!v.ports.empty()) {
            auto set = std::make_unique<PortSet>();
            for (uint16_t port : v.ports)
                set->set(port);
            e.ports = set.get();
            port_sets_.push_back(std::move(set));
        }
        if (v.address.family == Family::ipv4)
            v4_.push_back(e);
        else if (v.address.family == Family::ipv6)
            v6_.push_back(e);
        else
            throw std::invalid_argument("VIP without an address");
    }
}

bool VipSet::serves(const FlowKey &key) const noexcept
{
    /* The packet match() would see: to the VIP's port, in the key's protocol. */
    ParsedPacket p;
    p.family = key.family;
    p.l4_proto = key.proto();
    p.dst_port = key.vip_port();
    if (key.family == Family::ipv4) {
        for (const Entry &e : v4_)
            if (e.addr4 == key.v4.vip_addr && match_entry(e, p))
                return true;
    } else if (key.family == Family::ipv6) {
        for (const Entry &e : v6_)
            if (vip_detail::same6(e.addr, key.v6.vip_addr) && match_entry(e, p))
                return true;
    }
    return false;
}

} // namespace flowhome
