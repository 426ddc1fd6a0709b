/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/placement.hpp"

namespace flowhome {

uint64_t rendezvous_score(uint32_t flow_hash, NodeId node) noexcept
{
    /* splitmix64 finaliser over (hash, node): full avalanche, so scores of
     * different nodes for one flow are independent. */
    uint64_t x = (uint64_t{flow_hash} << 16 | node) + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

NodeId rendezvous_pick(uint32_t flow_hash, std::span<const NodeId> candidates) noexcept
{
    NodeId best = kInvalidNode;
    uint64_t best_score = 0;
    for (const NodeId n : candidates) {
        const uint64_t s = rendezvous_score(flow_hash, n);
        /* Ties (vanishingly rare) go to the lower id, so the order of the
         * candidate list never matters. */
        if (best == kInvalidNode || s > best_score || (s == best_score && n < best)) {
            best = n;
            best_score = s;
        }
    }
    return best;
}

} // namespace flowhome
