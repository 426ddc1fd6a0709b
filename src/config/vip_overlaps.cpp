/* SPDX-License-Identifier: BSD-3-Clause */
#include "vip_overlaps.hpp"

namespace flowhome::config_detail {

namespace {

constexpr VipProtocol kAllProtocols[] = {VipProtocol::tcp, VipProtocol::udp, VipProtocol::any};
static_assert(static_cast<size_t>(VipProtocol::any) == 2, "ByProtocol has one slot each");

bool protocols_meet(VipProtocol a, VipProtocol b)
{
    return a == b || a == VipProtocol::any || b == VipProtocol::any;
}

/* Keeps the lower of @p best and @p candidate in @p best. */
void keep_lowest(std::optional<size_t> &best, std::optional<size_t> candidate)
{
    if (candidate && (!best || *candidate < *best))
        best = candidate;
}

} // namespace

std::optional<size_t> VipOverlaps::first_overlap(const VipConfig &v) const
{
    const auto at = by_address_.find(v.address);
    if (at == by_address_.end())
        return std::nullopt;
    std::optional<size_t> first;
    for (const VipProtocol p : kAllProtocols) {
        if (!protocols_meet(p, v.protocol))
            continue;
        const Claims &c = at->second[static_cast<size_t>(p)];
        keep_lowest(first, c.every_port);
        if (v.ports.empty())
            keep_lowest(first, c.any_vip);
        for (const uint16_t port : v.ports)
            if (const auto hit = c.ports.find(port); hit != c.ports.end())
                keep_lowest(first, hit->second);
    }
    return first;
}

void VipOverlaps::add(const VipConfig &v, size_t index)
{
    Claims &c = by_address_[v.address][static_cast<size_t>(v.protocol)];
    // Indices rise, so the first index stored under a key stays its lowest.
    if (!c.any_vip)
        c.any_vip = index;
    if (v.ports.empty() && !c.every_port)
        c.every_port = index;
    for (const uint16_t port : v.ports)
        c.ports.try_emplace(port, index);
}

} // namespace flowhome::config_detail
