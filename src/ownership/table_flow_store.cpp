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
    uint64_t table = cursor == 0 ? kCursorIpv4 : cursor >> 32;
    auto position = static_cast<uint32_t>(cursor);
    uint32_t visited = 0;
    while (visited < budget && (table == kCursorIpv4 || table == kCursorIpv6)) {
        FlowKey key;
        OwnerRecord rec;
        if (!table_.next(table == kCursorIpv6 ? Family::ipv6 : Family::ipv4, position, key, rec)) {
            ++table; /* the IPv6 table after the IPv4 one, then the end */
            position = 0;
            continue;
        }
        fn(key, rec);
        ++visited;
    }
    cursor = table == kCursorIpv4 || table == kCursorIpv6 ? make_cursor(table, position) : 0;
    return visited;
}

} // namespace flowhome
