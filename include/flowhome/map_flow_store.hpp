/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * An in-memory FlowStore for the gossip simulator and the unit tests: the
 * same contract as TableFlowStore without an EAL. Entries live in a slot
 * array (a freed slot is reused, like an rte_hash key slot) indexed by a
 * hash map, so the scan order is stable and the scan cursor is a slot
 * position, as it is for the ownership table.
 *
 * Threading: one thread (the engine's).
 * Errors: lookup/remove/scan never fail; upsert returns full at the
 * configured capacity. The store allocates as it grows: an allocation
 * failure terminates (it is a test and simulation tool, not the datapath).
 */
#pragma once

#include <cstdint>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "flowhome/gossip_engine.hpp"

namespace flowhome {

class MapFlowStore : public FlowStore {
public:
    explicit MapFlowStore(uint32_t capacity = std::numeric_limits<uint32_t>::max());

    std::optional<OwnerRecord> lookup(const FlowKey &key) const noexcept override;
    UpsertResult upsert(const FlowKey &key, OwnerRecord record,
                        Presence presence) noexcept override;
    bool remove(const FlowKey &key) noexcept override;
    /** The cursor is 1 + the next slot position; a position past the end ends the scan. */
    uint32_t scan(uint64_t &cursor, uint32_t budget,
                  const std::function<void(const FlowKey &, OwnerRecord)> &fn) override;
    uint32_t size() const noexcept override { return static_cast<uint32_t>(index_.size()); }

    /**
     * Removes entries not restamped for more than @p timeout_s seconds
     * (pinned ones excepted), as the control loop's OwnershipTable::age()
     * does for the node; returns how many. Whole-table pass.
     */
    uint32_t age(uint16_t now_epoch, uint16_t timeout_s) noexcept;

    /** Every entry, sorted by key bytes: two stores are equal when these are. */
    std::vector<std::pair<FlowKey, OwnerRecord>> entries() const;

private:
    struct KeyHash {
        size_t operator()(const FlowKey &k) const noexcept { return flow_hash(k); }
    };
    struct Slot {
        FlowKey key;
        OwnerRecord record;
        bool used = false;
    };

    uint32_t capacity_;
    std::unordered_map<FlowKey, uint32_t, KeyHash> index_;
    std::vector<Slot> slots_;
    std::vector<uint32_t> free_;
};

/** Orders keys by family, then key bytes (a total order for sorting and comparing). */
bool flow_key_less(const FlowKey &a, const FlowKey &b) noexcept;

} // namespace flowhome
