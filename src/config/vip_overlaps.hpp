/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Private to src/config: which earlier VIP a new one overlaps, found without
 * comparing every pair. A node file may hold tens of thousands of VIPs, many
 * on one address, and a pairwise scan of a 1 MiB file took seconds.
 *
 * The rule (docs/configuration.md, vips): two VIPs overlap when they have
 * the same address, their protocols meet (equal, or either is any) and
 * their ports meet (either list is empty, meaning every port, or the lists
 * share a port).
 *
 * Threading: main lcore, start-up or console. Not thread-safe.
 */
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <unordered_map>

#include "flowhome/config.hpp"

namespace flowhome::config_detail {

class VipOverlaps {
public:
    /** The lowest index passed to add() of a VIP that @p v overlaps, if any. */
    std::optional<size_t> first_overlap(const VipConfig &v) const;
    /** Records @p v as vips[@p index]; indices must rise from call to call. */
    void add(const VipConfig &v, size_t index);

private:
    /* The VIPs of one address and one protocol, by their first index. */
    struct Claims {
        std::optional<size_t> any_vip;
        std::optional<size_t> every_port; /* a VIP without a port list */
        std::unordered_map<uint16_t, size_t> ports;
    };
    /* Indexed by VipProtocol. */
    using ByProtocol = std::array<Claims, 3>;

    std::map<IpAddr, ByProtocol> by_address_;
};

} // namespace flowhome::config_detail
