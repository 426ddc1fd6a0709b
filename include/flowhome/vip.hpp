/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The set of virtual service addresses (VIPs) a node steers.
 *
 * Threading: built on the main lcore; match() from any lcore, read-only.
 */
#pragma once

#include <bitset>
#include <memory>
#include <vector>

#include "flowhome/addr_table.hpp"
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

private:
    using PortSet = std::bitset<65536>;

    /** What the VIPs at one address serve over TCP, or over UDP. */
    struct Ports {
        bool all = false;       /**< a VIP there serves every port */
        PortSet *set = nullptr; /**< the union of their port lists */
    };

    /** Every VIP at one address, merged: the configuration lets VIPs share
     *  an address only where no packet matches two of them, so a packet
     *  matches the merge exactly when it matches one of them. */
    struct Service {
        Ports tcp;
        Ports udp;
        bool other = false; /**< other protocols (ICMP): a VIP of `any` without ports */

        bool match(uint8_t l4_proto, uint16_t dst_port, bool later_fragment) const noexcept;
    };

    void merge_ports(Ports &t, const std::vector<uint16_t> &ports);

    AddrTable<uint32_t, Service> v4_; /**< addresses as they lie in a header */
    AddrTable<AddrWords6, Service> v6_;
    std::vector<std::unique_ptr<PortSet>> port_sets_;
};

/* Inline: the worker asks for every packet, right after parsing it. */
inline bool VipSet::Service::match(uint8_t l4_proto, uint16_t dst_port,
                                   bool later_fragment) const noexcept
{
    const Ports *t = l4_proto == kProtoTcp ? &tcp : l4_proto == kProtoUdp ? &udp : nullptr;
    if (t == nullptr)
        return other;
    /* A later fragment has no ports: it belongs to the VIP by address, and
     * the worker drops it with a named reason. */
    return t->all || (t->set != nullptr && (later_fragment || t->set->test(dst_port)));
}

inline bool VipSet::match(const uint8_t *frame, const ParsedPacket &p) const noexcept
{
    const Service *svc = nullptr;
    if (p.family == Family::ipv4) {
        svc = v4_.find(addr_word4(frame + p.l3_offset + 16));
    } else if (p.family == Family::ipv6) {
        svc = v6_.find(AddrWords6::of(frame + p.l3_offset + 24));
    }
    return svc != nullptr && svc->match(p.l4_proto, p.dst_port, p.later_fragment);
}

} // namespace flowhome
