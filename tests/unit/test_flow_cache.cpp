/* SPDX-License-Identifier: BSD-3-Clause */
#include <catch2/catch.hpp>

#include "flowhome/flow_cache.hpp"

using namespace flowhome;

namespace {

using Cache4 = FlowCache<FlowKey4>;
using Cache6 = FlowCache<FlowKey6>;

FlowKey4 key4(uint16_t port)
{
    return FlowKey::make4(0x640200c0, port, 0x0a7100cb, 80, kProtoTcp).v4;
}

FlowKey6 key6(uint8_t vip_last = 1, uint16_t client_port = 1234, uint8_t proto = kProtoTcp)
{
    const uint8_t client[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
    uint8_t vip[16] = {0x20, 0x01, 0x0d, 0xb8, 1};
    vip[15] = vip_last;
    return FlowKey::make6(client, client_port, vip, 443, proto).v6;
}

} // namespace

TEST_CASE("the flow cache gives back a record under the stamp it was found with", "[flow_cache]")
{
    Cache4 c;
    const OwnerRecord rec{.owner = 2, .version = 3, .epoch = 4};
    OwnerRecord got;
    REQUIRE_FALSE(c.find(key4(1), 77, 5, got));
    c.insert(key4(1), 77, 5, rec);
    REQUIRE(c.find(key4(1), 77, 5, got));
    CHECK(got == rec);

    SECTION("a stamp the table has moved on from misses")
    {
        CHECK_FALSE(c.find(key4(1), 77, 6, got));
    }
    SECTION("another key of the same hash misses")
    {
        CHECK_FALSE(c.find(key4(2), 77, 5, got));
    }
    SECTION("another hash of the same slot misses")
    {
        CHECK_FALSE(c.find(key4(1), 77 + Cache4::kSlots, 5, got));
    }
    SECTION("a newer flow of the slot takes it")
    {
        c.insert(key4(2), 77 + Cache4::kSlots, 5, OwnerRecord{.owner = 1});
        CHECK_FALSE(c.find(key4(1), 77, 5, got));
        REQUIRE(c.find(key4(2), 77 + Cache4::kSlots, 5, got));
        CHECK(got.owner == 1);
    }
}

TEST_CASE("the flow cache compares every word of an IPv6 key", "[flow_cache]")
{
    Cache6 c;
    c.insert(key6(), 9, 0, OwnerRecord{.owner = 3});
    OwnerRecord got;
    REQUIRE(c.find(key6(), 9, 0, got));
    CHECK(got.owner == 3);
    /* The VIP ends in the fourth word, the ports and protocol are the fifth. */
    CHECK_FALSE(c.find(key6(2), 9, 0, got));
    CHECK_FALSE(c.find(key6(1, 1235), 9, 0, got));
    CHECK_FALSE(c.find(key6(1, 1234, kProtoUdp), 9, 0, got));
}

TEST_CASE("an empty flow cache finds nothing, whatever the key, hash and stamp", "[flow_cache]")
{
    /* Empty entries hold a zero key under stamp 0: only their hash keeps
     * a zero key of a table that never changed from finding them. */
    const Cache4 c4;
    const Cache6 c6;
    const FlowKey4 zero4{};
    const FlowKey6 zero6{};
    OwnerRecord got;
    for (uint32_t h = 0; h < 2 * Cache4::kSlots; ++h) {
        INFO("hash " << h);
        REQUIRE_FALSE(c4.find(zero4, h, 0, got));
        REQUIRE_FALSE(c6.find(zero6, h, 0, got));
    }
}

TEST_CASE("the flow cache rests where too few packets hit, then probes again", "[flow_cache]")
{
    Cache4 c;
    REQUIRE(c.probing());

    /* The figures below are worked out for these. */
    static_assert(Cache4::kWindow == 4096 && Cache4::kMinHits == 2 && Cache4::kPer == 3);
    SECTION("two thirds of a window's packets hit: it goes on probing")
    {
        c.probed(2731, 4096);
        CHECK(c.probing());
    }
    SECTION("exactly two in three: it goes on probing")
    {
        /* A window ends with the burst that fills it, past 4096. */
        c.probed(2732, 4098);
        CHECK(c.probing());
    }
    SECTION("fewer: it rests for kRestPackets packets")
    {
        /* 43 of 64 a burst, 21 in the last: 2730 of 4096. */
        for (uint32_t i = 0; i < 4096 / 64 - 1; ++i) {
            c.probed(43, 64);
            REQUIRE(c.probing());
        }
        c.probed(21, 64);
        REQUIRE_FALSE(c.probing());
        c.rested(Cache4::kRestPackets - 1);
        CHECK_FALSE(c.probing());
        c.rested(64);
        CHECK(c.probing());
        /* A new window: its first burst alone does not decide. */
        c.probed(0, 64);
        CHECK(c.probing());
    }
    SECTION("disabled, it never probes")
    {
        const Cache4 off(false);
        CHECK_FALSE(off.enabled());
        CHECK_FALSE(off.probing());
    }
}
