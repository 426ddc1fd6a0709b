/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Stateless placement: which node should own a flow nobody has claimed, or
 * whose owner is gone. Rendezvous (highest random weight) hashing: every node
 * scores each candidate with the same function of (flow hash, node id) and
 * picks the highest, so all nodes agree without messages, and removing a
 * candidate moves only the flows it was chosen for.
 *
 * Threading: pure functions; ClusterView is immutable once published.
 */
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "flowhome/types.hpp"

namespace flowhome {

/** Score of @p node for @p flow_hash; a 64-bit mix, identical on every build. */
uint64_t rendezvous_score(uint32_t flow_hash, NodeId node) noexcept;

/** The highest-scoring node of @p candidates; kInvalidNode when empty. */
NodeId rendezvous_pick(uint32_t flow_hash, std::span<const NodeId> candidates) noexcept;

/**
 * The set of nodes that may take flows, as this node currently sees it.
 * Built by the control plane, published to workers by pointer.
 */
struct ClusterView {
    std::vector<NodeId> eligible; /**< alive and not draining, sorted, self included */
};

} // namespace flowhome
