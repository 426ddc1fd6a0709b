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

namespace {

/* Destination addresses as words: one or two compares per VIP. */
inline uint32_t dst4(const uint8_t *frame, const ParsedPacket &p) noexcept
{
    uint32_t a;
    std::memcpy(&a, frame + p.l3_offset + 16, sizeof(a));
    return a;
}

inline bool same6(const std::array<uint8_t, 16> &vip, const uint8_t *dst) noexcept
{
    uint64_t a[2];
    uint64_t b[2];
    std::memcpy(a, vip.data(), sizeof(a));
    std::memcpy(b, dst, sizeof(b));
    return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
}

} // namespace

inline bool VipSet::match_entry(const Entry &e, const ParsedPacket &p) const noexcept
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
    /* A handful of VIPs per node: a linear scan of word compares beats any
     * hashing here. */
    if (p.family == Family::ipv4) {
        const uint32_t dst = dst4(frame, p);
        for (const Entry &e : v4_)
            if (e.addr4 == dst && match_entry(e, p))
                return true;
    } else if (p.family == Family::ipv6) {
        const uint8_t *dst = frame + p.l3_offset + 24;
        for (const Entry &e : v6_)
            if (same6(e.addr, dst) && match_entry(e, p))
                return true;
    }
    return false;
}

bool VipSet::is_vip_address(const uint8_t *frame, const ParsedPacket &p) const noexcept
{
    if (p.family == Family::ipv4) {
        const uint32_t dst = dst4(frame, p);
        for (const Entry &e : v4_)
            if (e.addr4 == dst)
                return true;
    } else if (p.family == Family::ipv6) {
        const uint8_t *dst = frame + p.l3_offset + 24;
        for (const Entry &e : v6_)
            if (same6(e.addr, dst))
                return true;
    }
    return false;
}

} // namespace flowhome
