/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The node's FlowStore: the gossip engine reads and writes the workers'
 * OwnershipTable through it.
 *
 * Scan cursor (also the sync protocol's cursor, docs/gossip-protocol.md):
 *
 *   bits 63..32: table, 1 = IPv4, 2 = IPv6;  bits 31..0: rte_hash_iterate position
 *
 * 0 starts at the beginning of the IPv4 table and is returned once both
 * tables were walked. A cursor received from a peer is untrusted: a table
 * number other than 1 or 2 ends the walk, a position past a table's end
 * moves on to the next table.
 *
 * Threading: the table's single writer (the control lcore) only.
 * Errors: nothing throws; see OwnershipTable for upsert results.
 */
#pragma once

#include "flowhome/gossip_engine.hpp"
#include "flowhome/ownership.hpp"

namespace flowhome {

class TableFlowStore : public FlowStore {
public:
    /** @p table must outlive the store. */
    explicit TableFlowStore(OwnershipTable &table) noexcept : table_(table) {}

    std::optional<OwnerRecord> lookup(const FlowKey &key) const noexcept override;
    UpsertResult upsert(const FlowKey &key, OwnerRecord record,
                        Presence presence) noexcept override;
    bool remove(const FlowKey &key) noexcept override;
    uint32_t scan(uint64_t &cursor, uint32_t budget,
                  const std::function<void(const FlowKey &, OwnerRecord)> &fn) override;
    uint32_t size() const noexcept override;
    /** The table's inserts and removes: either may move entries. */
    uint64_t generation() const noexcept override { return table_.mutations(); }

    static constexpr uint64_t kCursorIpv4 = 1;
    static constexpr uint64_t kCursorIpv6 = 2;
    static constexpr uint64_t make_cursor(uint64_t table, uint32_t position) noexcept
    {
        return table << 32 | position;
    }

private:
    OwnershipTable &table_;
};

} // namespace flowhome
