/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * All encapsulation templates of a node: one per peer, built for the peer's
 * network domain. Built by the control plane, published to the workers by
 * pointer and read without locks.
 *
 * Threading: build_template_set() on the main or control lcore (allocates,
 * throws std::invalid_argument for a peer it cannot reach). find() from any
 * lcore on a published, immutable set.
 */
#pragma once

#include <array>
#include <vector>

#include "flowhome/config.hpp"
#include "flowhome/encap.hpp"

namespace flowhome {

class TemplateSet {
public:
    TemplateSet() { index_.fill(kNone); }

    void add(const EncapTemplate &t);
    const EncapTemplate *find(NodeId peer) const noexcept
    {
        const uint16_t i = index_[peer & kMaxNodeId];
        return i == kNone ? nullptr : &templates_[i];
    }
    size_t size() const noexcept { return templates_.size(); }

private:
    static constexpr uint16_t kNone = 0xFFFF;
    std::vector<EncapTemplate> templates_;
    std::array<uint16_t, kMaxNodeId + 1> index_;
};

/**
 * One template per configured peer, toward the peer's MAC (or its domain's
 * next hop) from @p wire_mac, from the wire port's address of the peer's
 * family, bounded by the wire port's MTU.
 */
TemplateSet build_template_set(const NodeConfig &cfg, const MacAddr &wire_mac,
                               uint16_t wire_port_id);

} // namespace flowhome
