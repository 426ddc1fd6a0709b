/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The set of virtual service addresses (VIPs) a node steers.
 *
 * Threading: built on the main lcore; match() from any lcore, read-only.
 */
#pragma once

#include <algorithm>
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

    /** An IPv6 address as two words of its bytes, ordered as words: an
     *  order, not the addresses', is all the search needs. */
    struct Words6 {
        uint64_t hi;
        uint64_t lo;

        static Words6 of(const uint8_t *a) noexcept
        {
            Words6 w;
            std::memcpy(&w.hi, a, 8);
            std::memcpy(&w.lo, a + 8, 8);
            return w;
        }
        friend bool operator<(Words6 a, Words6 b) noexcept
        {
            /* One wide compare (cmp, sbb): a word-by-word one is a branch
             * at every step of the search, mispredicted when traffic
             * spreads over the VIPs. */
            return wide(a) < wide(b);
        }
        static unsigned __int128 wide(Words6 w) noexcept
        {
            return static_cast<unsigned __int128>(w.hi) << 64 | w.lo;
        }
        friend bool operator==(Words6 a, Words6 b) noexcept
        {
            return ((a.hi ^ b.hi) | (a.lo ^ b.lo)) == 0;
        }
    };

    /** One family's VIP addresses, sorted, beside their services: the
     *  addresses packed, so that a search of the few VIPs of most nodes
     *  reads one cache line, and of thousands a dozen. */
    template <typename Addr> struct Table {
        std::vector<Addr> addrs;
        std::vector<Service> services;

        const Service *find(Addr key) const noexcept;
    };

    void merge_ports(Ports &t, const std::vector<uint16_t> &ports);

    Table<uint32_t> v4_; /**< addresses as they lie in a header */
    Table<Words6> v6_;
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

/* A binary search without branches but the loop's: it halves the range
 * until one address is left, then compares. */
template <typename Addr>
inline const VipSet::Service *VipSet::Table<Addr>::find(Addr key) const noexcept
{
    if (addrs.empty())
        return nullptr;
    size_t base = 0;
    for (size_t len = addrs.size(); len > 1; len -= len / 2)
        base = key < addrs[base + len / 2] ? base : base + len / 2;
    return addrs[base] == key ? &services[base] : nullptr;
}

inline bool VipSet::match(const uint8_t *frame, const ParsedPacket &p) const noexcept
{
    const Service *svc = nullptr;
    if (p.family == Family::ipv4) {
        uint32_t dst;
        std::memcpy(&dst, frame + p.l3_offset + 16, sizeof(dst));
        svc = v4_.find(dst);
    } else if (p.family == Family::ipv6) {
        svc = v6_.find(Words6::of(frame + p.l3_offset + 24));
    }
    return svc != nullptr && svc->match(p.l4_proto, p.dst_port, p.later_fragment);
}

} // namespace flowhome
