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

bool VipSet::match_entry(const Entry &e, const ParsedPacket &p) const noexcept
{
    const bool l4 = p.l4_proto == kProtoTcp || p.l4_proto == kProtoUdp;
    switch (e.protocol) {
    case VipProtocol::tcp:
        if (p.l4_proto != kProtoTcp)
            return false;
        break;
    case VipProtocol::udp:
        if (p.l4_proto != kProtoUdp)
            return false;
        break;
    case VipProtocol::any:
        if (!l4)
            return e.ports == nullptr;
        break;
    }
    /* A later fragment has no ports: it belongs to the VIP by address, and
     * the worker drops it with a named reason. */
    if (e.ports == nullptr || p.later_fragment)
        return true;
    return e.ports->test(p.dst_port);
}

bool VipSet::match(const uint8_t *frame, const ParsedPacket &p) const noexcept
{
    /* A handful of VIPs per node: a linear scan of 4- or 16-byte compares
     * beats any hashing here. */
    if (p.family == Family::ipv4) {
        const uint8_t *dst = frame + p.l3_offset + 16;
        for (const Entry &e : v4_)
            if (std::memcmp(e.addr.data(), dst, 4) == 0 && match_entry(e, p))
                return true;
    } else if (p.family == Family::ipv6) {
        const uint8_t *dst = frame + p.l3_offset + 24;
        for (const Entry &e : v6_)
            if (std::memcmp(e.addr.data(), dst, 16) == 0 && match_entry(e, p))
                return true;
    }
    return false;
}

bool VipSet::is_vip_address(const uint8_t *frame, const ParsedPacket &p) const noexcept
{
    if (p.family == Family::ipv4) {
        for (const Entry &e : v4_)
            if (std::memcmp(e.addr.data(), frame + p.l3_offset + 16, 4) == 0)
                return true;
    } else if (p.family == Family::ipv6) {
        for (const Entry &e : v6_)
            if (std::memcmp(e.addr.data(), frame + p.l3_offset + 24, 16) == 0)
                return true;
    }
    return false;
}

} // namespace flowhome
