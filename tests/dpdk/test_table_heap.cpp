/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "flowhome/ownership.hpp"
#include "flowhome/table_heap.hpp"

#include "qsbr.hpp"

using namespace flowhome;
using flowhome::test::Qsbr;

namespace {

/* The kernel's THP mode, read here rather than through TableHeap: the
 * tests below must not take the code under test for their oracle. */
bool thp_selected()
{
    char line[128] = {};
    FILE *f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f == nullptr)
        return false;
    const bool read = std::fgets(line, sizeof(line), f) != nullptr;
    std::fclose(f);
    return read &&
           (std::strstr(line, "[always]") != nullptr || std::strstr(line, "[madvise]") != nullptr);
}

/* Distinct for i < 2^24: 192.0.2.x clients, every source port. */
FlowKey key4(uint32_t i)
{
    return FlowKey::make4(htonl(0xC0000200u | (i & 0xFF)), htons(static_cast<uint16_t>(i >> 8)),
                          htonl(0xC6336401u), htons(80), kProtoTcp);
}

FlowKey key6(uint32_t i)
{
    uint8_t client[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t vip[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01};
    const uint32_t be = htonl(i);
    std::memcpy(client + 12, &be, 4);
    return FlowKey::make6(client, htons(2000), vip, htons(443), kProtoTcp);
}

/* Inserts until the table refuses; returns how many it took. */
uint32_t fill(OwnershipTable &t, Family f, uint32_t limit)
{
    for (uint32_t i = 0; i < limit; ++i) {
        const FlowKey k = f == Family::ipv4 ? key4(i) : key6(i);
        if (t.upsert(k, OwnerRecord{.owner = 1, .version = 1}) != UpsertResult::inserted)
            return i;
    }
    return limit;
}

size_t eal_allocated()
{
    return TableHeap::allocated_on(static_cast<int>(rte_socket_id()));
}

} // namespace

TEST_CASE("table.memory eal keeps the table in the EAL heap", "[table_heap]")
{
    const TableHeap heap(TableMemory::eal, "th_eal", 1u << 20);
    CHECK_FALSE(heap.transparent());
    CHECK(heap.socket_id() == static_cast<int>(rte_socket_id()));
    CHECK(heap.huge_bytes() == 0);
    CHECK(heap.describe().starts_with("EAL heap"));
}

TEST_CASE("table.memory auto takes transparent huge pages only without hugepages", "[table_heap]")
{
    const TableHeap heap(TableMemory::automatic, "th_auto", 1u << 20);
    CHECK(TableHeap::transparent_huge_pages_enabled() == thp_selected());
    CHECK(heap.transparent() == (rte_eal_has_hugepages() == 0 && thp_selected()));
}

TEST_CASE("a table takes its whole capacity in a heap of memory_bound bytes", "[table_heap]")
{
    if (!thp_selected()) {
        WARN("the kernel gives no transparent huge pages: nothing to test");
        return;
    }
    const struct {
        uint32_t cap4, cap6;
    } cases[] = {
        {1024, 1024},       /* smallest tables, extendable buckets */
        {100000, 3000},     /* 76 % of 2^17 slots: no extendable buckets */
        {900000, 1u << 16}, /* 86 % of 2^20 slots: extendable buckets */
        {1u << 20, 70000},  /* a full power of two */
    };
    for (const auto &c : cases) {
        DYNAMIC_SECTION("capacities " << c.cap4 << " / " << c.cap6)
        {
            Qsbr q;
            const size_t bound = OwnershipTable::memory_bound(c.cap4, c.cap6);
            TableHeap heap(TableMemory::thp, "th_fill", bound);
            REQUIRE(heap.transparent());
            const size_t before = heap.allocated_bytes();
            const size_t eal_before = eal_allocated();
            {
                OwnershipTable t(OwnershipTable::Params{.name = "thf",
                                                        .capacity_ipv4 = c.cap4,
                                                        .capacity_ipv6 = c.cap6,
                                                        .socket_id = heap.socket_id(),
                                                        .qsbr = q.v});
                CHECK(fill(t, Family::ipv4, c.cap4 + 100) == c.cap4);
                CHECK(fill(t, Family::ipv6, c.cap6 + 100) == c.cap6);
                const auto r = t.lookup(key4(c.cap4 - 1));
                REQUIRE(r.has_value());
                CHECK(r->owner == 1);
                const size_t used = heap.allocated_bytes() - before;
                /* What does not go to the table's socket stays within its bound. */
                CHECK(eal_allocated() - eal_before <=
                      OwnershipTable::eal_memory_bound(c.cap4, c.cap6));
                /* The bound holds, and stays close: within a quarter and 1 MB. */
                CHECK(used <= bound);
                CHECK(bound <= used + used / 4 + (size_t{1} << 20));
                /* Every 2 MB extent the table filled is a huge page. */
                CHECK(heap.huge_bytes() + (size_t{2} << 20) >= used);
            }
            CHECK(heap.allocated_bytes() == before);
        }
    }
}

TEST_CASE("a table heap is released with its name", "[table_heap]")
{
    if (!thp_selected()) {
        WARN("the kernel gives no transparent huge pages: nothing to test");
        return;
    }
    for (int i = 0; i < 3; ++i) {
        TableHeap heap(TableMemory::thp, "th_again", 4u << 20);
        CHECK(heap.transparent());
        void *p = rte_malloc_socket("x", 1u << 20, 0, heap.socket_id());
        REQUIRE(p != nullptr);
        rte_free(p);
    }
}

TEST_CASE("a table heap larger than the machine can hold is refused with an error", "[table_heap]")
{
    if (!thp_selected()) {
        WARN("the kernel gives no transparent huge pages: nothing to test");
        return;
    }
    /* 64 TiB: more than any machine this runs on has, less than the 128 TiB
     * of user address space. */
    const size_t huge = size_t{64} << 40;
    try {
        TableHeap heap(TableMemory::thp, "th_huge", huge);
        FAIL("a 64 TiB table heap was granted");
    } catch (const std::runtime_error &e) {
        CHECK_THAT(e.what(), Catch::Matchers::StartsWith("cannot map"));
    }
    /* Nothing of it is left behind: the name is free again. */
    TableHeap again(TableMemory::thp, "th_huge", 4u << 20);
    CHECK(again.transparent());
}
