/* SPDX-License-Identifier: BSD-3-Clause */
/* TableFlowStore over a real OwnershipTable: scan covers both families,
 * the cursor resumes, 0 at the end, forged cursors end the walk. */
#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "flowhome/table_flow_store.hpp"

#include "qsbr.hpp"

using namespace flowhome;
using flowhome::test::Qsbr;

namespace {

int g_seq = 0;

FlowKey key4(uint32_t i)
{
    return FlowKey::make4(htonl(0x0A000000u + i), htons(static_cast<uint16_t>(1024 + i)),
                          htonl(0xC6336401u), htons(80), kProtoTcp);
}

FlowKey key6(uint32_t i)
{
    uint8_t client[16] = {0x20, 0x01, 0x0d, 0xb8};
    uint8_t vip[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01};
    client[14] = static_cast<uint8_t>(i >> 8);
    client[15] = static_cast<uint8_t>(i);
    return FlowKey::make6(client, htons(static_cast<uint16_t>(2000 + i)), vip, htons(443),
                          kProtoUdp);
}

/* Identifies a key for set membership: family and index in the record's version. */
std::pair<int, uint16_t> id_of(const FlowKey &k, OwnerRecord r)
{
    return {static_cast<int>(k.family), r.version};
}

} // namespace

TEST_CASE("TableFlowStore scans both tables with a resumable cursor", "[gossip][store]")
{
    Qsbr q;
    OwnershipTable table({.name = "tfs" + std::to_string(++g_seq),
                          .capacity_ipv4 = 1024,
                          .capacity_ipv6 = 256,
                          .socket_id = -1,
                          .qsbr = q.v});
    TableFlowStore store(table);
    constexpr uint16_t n4 = 300;
    constexpr uint16_t n6 = 70;
    for (uint16_t i = 0; i < n4; ++i)
        REQUIRE(store.upsert(key4(i), OwnerRecord{1, i, 0, 0, 0}) == UpsertResult::inserted);
    for (uint16_t i = 0; i < n6; ++i)
        REQUIRE(store.upsert(key6(i), OwnerRecord{2, i, 0, 0, 0}) == UpsertResult::inserted);
    REQUIRE(store.size() == n4 + n6);
    REQUIRE(store.lookup(key6(5))->owner == 2);

    SECTION("one pass in slices visits every entry once and ends at 0")
    {
        std::set<std::pair<int, uint16_t>> seen;
        uint64_t cursor = 0;
        uint32_t total = 0;
        int calls = 0;
        bool saw_v6_cursor = false;
        do {
            total += store.scan(cursor, 37, [&](const FlowKey &k, OwnerRecord r) {
                REQUIRE(seen.insert(id_of(k, r)).second);
                REQUIRE(store.lookup(k) == r);
            });
            saw_v6_cursor = saw_v6_cursor || (cursor >> 32) == TableFlowStore::kCursorIpv6;
            ++calls;
        } while (cursor != 0 && calls < 1000);
        CHECK(cursor == 0);
        CHECK(total == n4 + n6);
        CHECK(seen.size() == n4 + n6);
        CHECK(saw_v6_cursor);
        CHECK(calls >= (n4 + n6) / 37);
    }
    SECTION("a budget larger than the table finishes in one call")
    {
        uint64_t cursor = 0;
        CHECK(store.scan(cursor, 10000, [](const FlowKey &, OwnerRecord) {}) == n4 + n6);
        CHECK(cursor == 0);
    }
    SECTION("removed entries are not visited")
    {
        for (uint16_t i = 0; i < n6; ++i)
            REQUIRE(store.remove(key6(i)));
        uint64_t cursor = 0;
        uint32_t v6 = 0;
        store.scan(cursor, 10000,
                   [&](const FlowKey &k, OwnerRecord) { v6 += k.family == Family::ipv6 ? 1 : 0; });
        CHECK(v6 == 0);
        CHECK(store.size() == n4);
    }
    SECTION("forged cursors end the walk without reading outside the tables")
    {
        for (const uint64_t forged : {uint64_t{0xFFFFFFFFFFFFFFFF}, uint64_t{3} << 32,
                                      TableFlowStore::make_cursor(2, 0xFFFFFFF0u)}) {
            uint64_t cursor = forged;
            CHECK(store.scan(cursor, 100, [](const FlowKey &, OwnerRecord) {}) == 0);
            CHECK(cursor == 0);
        }
        /* Past the IPv4 table's end: the walk goes on with the IPv6 table. */
        uint64_t cursor = TableFlowStore::make_cursor(1, 0xFFFFFFF0u);
        uint32_t v4 = 0;
        uint32_t v6 = 0;
        store.scan(cursor, 1000, [&](const FlowKey &k, OwnerRecord) {
            (k.family == Family::ipv6 ? v6 : v4) += 1;
        });
        CHECK(v4 == 0);
        CHECK(v6 == n6);
        CHECK(cursor == 0);
    }
}
