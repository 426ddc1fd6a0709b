/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gossip engine's view of the ownership table. Control lcore only (the
 * table's single writer); lookups and writes are the table's own.
 */
#include "flowhome/table_flow_store.hpp"

namespace flowhome {

std::optional<OwnerRecord> TableFlowStore::lookup(const FlowKey &key) const noexcept
{
    return table_.lookup(key);
}

UpsertResult TableFlowStore::upsert(const FlowKey &key, OwnerRecord record,
                                    Presence presence) noexcept
{
    return table_.upsert(key, record, presence);
}

bool TableFlowStore::remove(const FlowKey &key) noexcept
{
    return table_.remove(key);
}

uint32_t TableFlowStore::size() const noexcept
{
    return table_.count(Family::ipv4) + table_.count(Family::ipv6);
}

uint32_t TableFlowStore::scan(uint64_t &cursor, uint32_t budget,
                              const std::function<void(const FlowKey &, OwnerRecord)> &fn)
{
    /* 0 starts a walk; a cursor naming neither table (forged) ends it. */
    const uint64_t table = cursor == 0 ? kCursorIpv4 : cursor >> 32;
    OwnershipTable::Walk w{table == kCursorIpv6 ? Family::ipv6 : Family::ipv4,
                           static_cast<uint32_t>(cursor),
                           table != kCursorIpv4 && table != kCursorIpv6};
    uint32_t visited = 0;
    FlowKey key;
    OwnerRecord rec;
    while (visited < budget && table_.next(w, key, rec)) {
        fn(key, rec);
        ++visited;
    }
    cursor =
        w.ended ? 0 : make_cursor(w.family == Family::ipv6 ? kCursorIpv6 : kCursorIpv4, w.position);
    return visited;
}

} // namespace flowhome
