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
    /** True when @p frame's destination address is any VIP address. */
    bool is_vip_address(const uint8_t *frame, const ParsedPacket &p) const noexcept;

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

} // namespace flowhome
