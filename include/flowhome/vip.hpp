/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The set of virtual service addresses (VIPs) a node steers.
 *
 * Threading: built on the main lcore; match() from any lcore, read-only.
 */
#pragma once

#include <array>
#include <bitset>
#include <cstring>
#include <memory>
#include <vector>

#include "flowhome/config.hpp"
#include "flowhome/packet.hpp"

namespace flowhome {

class VipSet {
public:
    /** Throws std::invalid_argument for a VIP without an address. */
    explicit VipSet(const std::vector<VipConfig> &vips);

    /**
     * True when the parsed packet is addressed to a VIP, with a matching
     * protocol and port. Non-TCP/UDP packets to a VIP address (ICMP) match
     * when the VIP's protocol is `any` and it has no port list.
     */
    bool match(const uint8_t *frame, const ParsedPacket &p) const noexcept;

    /** True when a VIP serves @p key's VIP address, protocol and port: what
     *  match() says of the flow's packets. */
    bool serves(const FlowKey &key) const noexcept;

    size_t size() const noexcept { return v4_.size() + v6_.size(); }

private:
    using PortSet = std::bitset<65536>;
    struct Entry {
        std::array<uint8_t, 16> addr;
        uint32_t addr4; /**< IPv4: the address as it lies in a header */
        VipProtocol protocol;
        const PortSet *ports; /**< nullptr: every port */
    };
    bool match_entry(const Entry &e, const ParsedPacket &p) const noexcept;

    std::vector<Entry> v4_;
    std::vector<Entry> v6_;
    std::vector<std::unique_ptr<PortSet>> port_sets_;
};

namespace vip_detail {

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

} // namespace vip_detail

/* Inline: the worker asks for every packet, right after parsing it. */
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

inline bool VipSet::match(const uint8_t *frame, const ParsedPacket &p) const noexcept
{
    /* A handful of VIPs per node: a linear scan of word compares beats any
     * hashing here. */
    if (p.family == Family::ipv4) {
        const uint32_t dst = vip_detail::dst4(frame, p);
        for (const Entry &e : v4_)
            if (e.addr4 == dst && match_entry(e, p))
                return true;
    } else if (p.family == Family::ipv6) {
        const uint8_t *dst = frame + p.l3_offset + 24;
        for (const Entry &e : v6_)
            if (vip_detail::same6(e.addr, dst) && match_entry(e, p))
                return true;
    }
    return false;
}

} // namespace flowhome
