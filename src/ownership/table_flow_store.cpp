/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gossip engine's view of the ownership table. Control lcore only (the
 * table's single writer); lookups and writes are the table's own.
 */
#include "flowhome/table_flow_store.hpp"

#include <cstring>

#include <rte_hash.h>

namespace flowhome {

std::optional<OwnerRecord> TableFlowStore::lookup(const FlowKey &key) const noexcept
{
    return table_.lookup(key);
}

UpsertResult TableFlowStore::upsert(const FlowKey &key, OwnerRecord record) noexcept
{
    return table_.upsert(key, record);
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
        const bool v6 = table == kCursorIpv6;
        const void *key = nullptr;
        void *data = nullptr;
        /* rte_hash_iterate walks the main table then the extendable
         * buckets, and returns -ENOENT for any position past the end: a
         * forged cursor cannot read outside the table. */
        if (rte_hash_iterate(v6 ? table_.hash6() : table_.hash4(), &key, &data, &position) < 0) {
            ++table; /* the IPv6 table after the IPv4 one, then the end */
            position = 0;
            continue;
        }
        const FlowKey k = FlowKey::from_key_bytes(v6 ? Family::ipv6 : Family::ipv4, key);
        fn(k, OwnerRecord::unpack(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data))));
        ++visited;
    }
    cursor = table == kCursorIpv4 || table == kCursorIpv6 ? make_cursor(table, position) : 0;
    return visited;
}

} // namespace flowhome
