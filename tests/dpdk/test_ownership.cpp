/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "flowhome/ownership.hpp"

#include "qsbr.hpp"

using namespace flowhome;
using flowhome::test::Qsbr;
using flowhome::test::SilentReader;

namespace {

int g_table_seq = 0;

OwnershipTable::Params params(rte_rcu_qsbr *v, uint32_t cap4, uint32_t cap6 = 64)
{
    return {.name = fmt::format("t{}", ++g_table_seq),
            .capacity_ipv4 = cap4,
            .capacity_ipv6 = cap6,
            .socket_id = -1,
            .qsbr = v};
}

FlowKey key4(uint32_t i, uint8_t proto = kProtoTcp)
{
    /* 192.0.2.x clients toward VIP 198.51.100.1:80 */
    return FlowKey::make4(htonl(0xC0000200u | (i & 0xFF)), htons(static_cast<uint16_t>(1024 + i)),
                          htonl(0xC6336401u), htons(80), proto);
}

/* Inserts key4(0) .. key4(n - 1), owned by node 1: a table of n entries full. */
void fill4(OwnershipTable &t, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i)
        REQUIRE(t.upsert(key4(i), {.owner = 1}) == UpsertResult::inserted);
}

FlowKey key6(uint32_t i)
{
    uint8_t client[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t vip[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01};
    client[15] = static_cast<uint8_t>(i);
    return FlowKey::make6(client, htons(static_cast<uint16_t>(2000 + i)), vip, htons(443),
                          kProtoTcp);
}

/* A distinct IPv4 key per index (any 32 bits of it): 203.0.113.x clients,
 * the rest of the index in the client port and the VIP's. */
FlowKey key4_spread(uint32_t i)
{
    return FlowKey::make4(htonl(0xCB007100u | (i & 0xFF)), htons(static_cast<uint16_t>(i >> 8)),
                          htonl(0xC6336401u), htons(static_cast<uint16_t>(443 + (i >> 24))),
                          kProtoTcp);
}

/* A distinct IPv4 key per index whose bits look random: CRC32-C is linear,
 * and keys that differ only in a counter fill a table's buckets evenly,
 * as random traffic does not. */
FlowKey key4_mixed(uint32_t i)
{
    const uint32_t x = i * 0x9E3779B1u; /* a bijection of the 32-bit numbers */
    return FlowKey::make4(htonl(x), htons(static_cast<uint16_t>(x >> 7)), htonl(0xC6336401u),
                          htons(443), kProtoTcp);
}

/* Inserts fresh keys until the table refuses one; returns how many went in. */
uint32_t fill_until_full(OwnershipTable &t, uint32_t first_key, uint32_t limit)
{
    uint32_t n = 0;
    while (n <= limit &&
           t.upsert(key4_spread(first_key + n), {.owner = 1}) == UpsertResult::inserted)
        ++n;
    return n;
}

} // namespace

TEST_CASE("records round-trip through the data word", "[ownership]")
{
    const OwnerRecord r{
        .owner = 4095, .version = 0xBEEF, .epoch = 0xFFFF, .flags = 0x81, .reserved = 7};
    REQUIRE(OwnerRecord::unpack(r.pack()) == r);
}

TEST_CASE("insert, look up, update and remove, both families", "[ownership]")
{
    Qsbr q;
    OwnershipTable t(params(q.v, 1024));
    const FlowKey a = key4(1);
    const FlowKey b = key6(1);

    REQUIRE_FALSE(t.lookup(a));
    REQUIRE(t.upsert(a, {.owner = 2, .version = 1}) == UpsertResult::inserted);
    REQUIRE(t.upsert(b, {.owner = 3, .version = 1}) == UpsertResult::inserted);
    REQUIRE(t.lookup(a)->owner == 2);
    REQUIRE(t.lookup(b)->owner == 3);
    REQUIRE(t.count(Family::ipv4) == 1);
    REQUIRE(t.count(Family::ipv6) == 1);

    REQUIRE(t.upsert(a, {.owner = 5, .version = 2}) == UpsertResult::updated);
    REQUIRE(t.lookup(a)->owner == 5);
    REQUIRE(t.lookup(a)->version == 2);
    REQUIRE(t.count(Family::ipv4) == 1);

    REQUIRE(t.remove(a));
    REQUIRE_FALSE(t.remove(a));
    REQUIRE_FALSE(t.lookup(a));
    REQUIRE(t.lookup(b));

    FlowKey none;
    REQUIRE(t.upsert(none, {}) == UpsertResult::error);
}

TEST_CASE("each change of a key moves its hash's stamp by one; a refusal does not", "[ownership]")
{
    Qsbr q;
    constexpr uint32_t kCap = 1024;
    OwnershipTable t(params(q.v, kCap));
    for (const FlowKey &k : {key4(1), key6(1)}) {
        INFO(k.to_string());
        const uint32_t h = flow_hash(k);
        uint32_t s = t.stamp(h);
        REQUIRE(t.upsert(k, {.owner = 2}) == UpsertResult::inserted);
        CHECK(t.stamp(h) == ++s);
        REQUIRE(t.upsert(k, {.owner = 3}) == UpsertResult::updated);
        CHECK(t.stamp(h) == ++s);
        REQUIRE(t.lookup(k));
        CHECK(t.stamp(h) == s);
        REQUIRE(t.remove(k));
        CHECK(t.stamp(h) == ++s);
        REQUIRE_FALSE(t.remove(k));
        CHECK(t.stamp(h) == s);
    }
    /* A full table's refusal changes nothing: no stamp moves. */
    for (uint32_t i = 0; i < kCap; ++i)
        REQUIRE(t.upsert(key4_spread(i), {.owner = 1}) == UpsertResult::inserted);
    const FlowKey refused = key4_spread(kCap);
    const uint32_t before = t.stamp(flow_hash(refused));
    REQUIRE(t.upsert(refused, {.owner = 1}) == UpsertResult::full);
    CHECK(t.stamp(flow_hash(refused)) == before);
}

TEST_CASE("the table's walk visits both families and stops when asked", "[ownership]")
{
    Qsbr q;
    OwnershipTable t(params(q.v, 1024));
    std::set<std::string> want;
    for (uint32_t i = 0; i < 5; ++i) {
        REQUIRE(t.upsert(key4(i), {.owner = 2, .version = 1}) == UpsertResult::inserted);
        REQUIRE(t.upsert(key6(i), {.owner = 3, .version = 1}) == UpsertResult::inserted);
        want.insert(key4(i).to_string());
        want.insert(key6(i).to_string());
    }

    std::set<std::string> seen;
    CHECK(t.for_each([&](const FlowKey &k, OwnerRecord rec) {
        CHECK(rec.owner == (k.family == Family::ipv4 ? 2 : 3));
        seen.insert(k.to_string());
    }) == 10);
    CHECK(seen == want);

    /* A visitor returning false ends the walk at once, IPv4 first. */
    unsigned calls = 0;
    CHECK(t.for_each([&](const FlowKey &k, OwnerRecord) {
        CHECK(k.family == Family::ipv4);
        return ++calls < 3;
    }) == 3);
    CHECK(calls == 3);

    /* Resumable, and a cursor past the end reads nothing. */
    uint32_t cursor = 0;
    FlowKey k;
    OwnerRecord rec;
    unsigned v6 = 0;
    while (t.next(Family::ipv6, cursor, k, rec))
        v6 += k.family == Family::ipv6;
    CHECK(v6 == 5);
    cursor = 0xFFFFFFF0u;
    CHECK_FALSE(t.next(Family::ipv4, cursor, k, rec));
}

TEST_CASE("the table hashes keys with flow_hash", "[ownership]")
{
    /* Workers pass flow_hash() values to the _with_hash lookups: the
     * table's own hash must be the same function. */
    Qsbr q;
    OwnershipTable t(params(q.v, 64));
    for (uint32_t i = 0; i < 50; ++i) {
        const FlowKey k4 = key4(i);
        const FlowKey k6 = key6(i);
        REQUIRE(rte_hash_hash(t.hash4(), &k4.v4) == flow_hash(k4));
        REQUIRE(rte_hash_hash(t.hash6(), &k6.v6) == flow_hash(k6));
    }
}

TEST_CASE("bulk lookup reports hits and records", "[ownership]")
{
    Qsbr q;
    OwnershipTable t(params(q.v, 1024));
    std::vector<FlowKey> keys;
    for (uint32_t i = 0; i < 40; ++i) {
        keys.push_back(key4(i));
        if (i % 3 == 0)
            REQUIRE(t.upsert(keys.back(), {.owner = static_cast<NodeId>(i + 1)}) ==
                    UpsertResult::inserted);
    }
    const FlowKey4 *ptrs[40];
    uint32_t hashes[40];
    OwnerRecord recs[40];
    for (unsigned i = 0; i < 40; ++i) {
        ptrs[i] = &keys[i].v4;
        hashes[i] = flow_hash(keys[i]);
    }
    const uint64_t hits = t.lookup_bulk4(ptrs, hashes, 40, recs);
    for (unsigned i = 0; i < 40; ++i) {
        INFO("key " << i);
        REQUIRE(((hits >> i) & 1) == (i % 3 == 0 ? 1u : 0u));
        if (i % 3 == 0)
            REQUIRE(recs[i].owner == i + 1);
    }
}

TEST_CASE("a burst of 64 keys finds a key kept in an extendable bucket", "[ownership]")
{
    /* DPDK's bulk lookup stops before the extendable buckets when a 64-key
     * call found nothing in the main ones (ownership_table.cpp): a busy
     * flow whose key was pushed out of its two main buckets missed every
     * full burst. */
    Qsbr q;
    constexpr uint32_t kSlots = 4096; /* 512 main buckets of 8 */
    OwnershipTable t(params(q.v, kSlots));
    REQUIRE(t.extendable(Family::ipv4));
    for (uint32_t i = 0; i < kSlots; ++i)
        REQUIRE(t.upsert(key4_mixed(i), {.owner = 3, .version = 1}) == UpsertResult::inserted);
    /* rte_hash_iterate() numbers the main slots first: the first entry past
     * them is in an extendable bucket. */
    const void *kp = nullptr;
    void *data = nullptr;
    uint32_t position = kSlots;
    REQUIRE(rte_hash_iterate(t.hash4(), &kp, &data, &position) >= 0);
    const FlowKey pushed = FlowKey::from_key_bytes(Family::ipv4, kp);
    REQUIRE(t.lookup(pushed));

    std::vector<FlowKey> unknown;
    for (uint32_t i = 0; i < kLookupBulkMax; ++i)
        unknown.push_back(key4_mixed(1'000'000 + i));
    for (const unsigned copies : {1u, kLookupBulkMax / 2, kLookupBulkMax - 1, kLookupBulkMax}) {
        for (const bool with_misses : {false, true}) {
            /* n copies of the pushed key, alone or after 64 - n unknown keys. */
            const unsigned n = with_misses ? kLookupBulkMax : copies;
            const FlowKey4 *keys[kLookupBulkMax];
            uint32_t hashes[kLookupBulkMax];
            for (unsigned i = 0; i < n; ++i) {
                const FlowKey &k = i < n - copies ? unknown[i] : pushed;
                keys[i] = &k.v4;
                hashes[i] = flow_hash(k);
            }
            OwnerRecord recs[kLookupBulkMax];
            const uint64_t hits = t.lookup_bulk4(keys, hashes, n, recs);
            const uint64_t want =
                copies == 64 ? ~uint64_t{0} : ((uint64_t{1} << copies) - 1) << (n - copies);
            INFO(copies << " copies of the key in " << n << " keys");
            CHECK(hits == want);
            CHECK(recs[n - 1].owner == 3);
        }
    }
}

TEST_CASE("an insert into a full table is a counted refusal", "[ownership]")
{
    Qsbr q;
    constexpr uint32_t kCap = 256;
    OwnershipTable t(params(q.v, kCap));
    uint32_t inserted = 0;
    for (uint32_t i = 0; i < kCap; ++i)
        inserted += t.upsert(key4(i), {.owner = 1}) == UpsertResult::inserted;
    /* The extendable bucket table makes capacity exact. */
    REQUIRE(inserted == kCap);
    REQUIRE(t.upsert(key4(kCap), {.owner = 1}) == UpsertResult::full);
    REQUIRE(t.count(Family::ipv4) == kCap);
    REQUIRE_FALSE(t.lookup(key4(kCap)));
    for (uint32_t i = 0; i < kCap; ++i)
        REQUIRE(t.lookup(key4(i)));
    /* An existing key can still be updated when the table is full. */
    REQUIRE(t.upsert(key4(7), {.owner = 9}) == UpsertResult::updated);
    /* It says so until one entry in 1024 (at least one) has gone. */
    REQUIRE(t.refusing(Family::ipv4));
    REQUIRE_FALSE(t.refusing(Family::ipv6));
    REQUIRE(t.remove(key4(0)));
    REQUIRE_FALSE(t.refusing(Family::ipv4));
}

TEST_CASE("keys crafted into one pair of buckets are refused one by one, not the table",
          "[ownership]")
{
    /* CRC32-C with a fixed seed is linear: the changes to a key that leave
     * its hash alone form a space, found by elimination. A table without
     * the extendable buckets refuses the 17th key of one hash (two buckets
     * of 8) however empty it is: that key is refused, new flows are not. */
    Qsbr q;
    constexpr uint32_t kCap = (1u << 17) * 6 / 10;
    OwnershipTable t(params(q.v, kCap));
    REQUIRE_FALSE(t.extendable(Family::ipv4));
    for (uint32_t i = 0; i < 100; ++i)
        REQUIRE(t.upsert(key4_spread(i), {.owner = 1}) == UpsertResult::inserted);
    /* Client address and port changed by d (its low 32 bits, then 16). */
    const auto key_of = [](uint64_t d) {
        return FlowKey::make4(htonl(0xCB007105u ^ static_cast<uint32_t>(d)),
                              htons(static_cast<uint16_t>(40000 ^ (d >> 32))), htonl(0xC6336401u),
                              htons(443), kProtoTcp);
    };
    const uint32_t h0 = flow_hash(key_of(0));
    std::vector<std::pair<uint32_t, uint64_t>> pivots; /* hash change, key change */
    std::vector<uint64_t> kernel;                      /* key changes that keep the hash */
    for (unsigned bit = 0; bit < 48; ++bit) {
        uint32_t v = flow_hash(key_of(uint64_t{1} << bit)) ^ h0;
        uint64_t c = uint64_t{1} << bit;
        for (const auto &[pv, pc] : pivots)
            if ((v ^ pv) < v) {
                v ^= pv;
                c ^= pc;
            }
        if (v == 0) {
            kernel.push_back(c);
        } else {
            pivots.emplace_back(v, c);
            std::sort(pivots.begin(), pivots.end(),
                      [](auto a, auto b) { return a.first > b.first; });
        }
    }
    REQUIRE(kernel.size() >= 5);
    unsigned refused = 0;
    for (uint32_t m = 0; m < 32; ++m) {
        uint64_t d = 0;
        for (unsigned b = 0; b < 5; ++b)
            if ((m >> b) & 1)
                d ^= kernel[b];
        REQUIRE(flow_hash(key_of(d)) == h0);
        refused += t.upsert(key_of(d), {.owner = 1}) == UpsertResult::full;
    }
    CHECK(refused == 16);
    CHECK_FALSE(t.refusing(Family::ipv4));
    CHECK(t.upsert(key4_spread(100), {.owner = 1}) == UpsertResult::inserted);
}

TEST_CASE("a full table refuses new flows until 1 in 1024 of its slots are free again",
          "[ownership]")
{
    Qsbr q;
    constexpr uint32_t kCap = 8192;
    OwnershipTable t(params(q.v, kCap));
    fill4(t, kCap);
    REQUIRE_FALSE(t.refusing(Family::ipv4)); /* full, but nothing refused yet */
    REQUIRE(t.upsert(key4(kCap), {.owner = 1}) == UpsertResult::full);
    for (uint32_t i = 0; i < kCap / OwnershipTable::kReopenShare; ++i) {
        REQUIRE(t.refusing(Family::ipv4));
        REQUIRE(t.remove(key4(i)));
    }
    REQUIRE_FALSE(t.refusing(Family::ipv4));
    REQUIRE(t.upsert(key4(kCap), {.owner = 1}) == UpsertResult::inserted);
}

TEST_CASE("slots waiting for their grace period refuse a claim, not the table", "[ownership][rcu]")
{
    Qsbr q(1);
    constexpr uint32_t kCap = 8192;
    OwnershipTable t(params(q.v, kCap));
    fill4(t, kCap);
    /* A reader that has not reported since the removals: their slots are
     * not free yet, though no flow holds them. */
    SilentReader reader(q);
    for (uint32_t i = 0; i < 2 * kCap / OwnershipTable::kReopenShare; ++i)
        REQUIRE(t.remove(key4(i)));
    REQUIRE(t.upsert(key4(kCap), {.owner = 1}) == UpsertResult::full);
    /* Refusing, the table would get no claim, hence no removal, to clear
     * it: the workers would turn connections away with the room free. */
    CHECK_FALSE(t.refusing(Family::ipv4));
    reader.report();
    REQUIRE(t.upsert(key4(kCap), {.owner = 1}) == UpsertResult::inserted);
}

TEST_CASE("a deleted slot is reused only after readers pass a quiescent state", "[ownership][rcu]")
{
    Qsbr q(1);
    constexpr uint32_t kCap = 64;
    OwnershipTable t(params(q.v, kCap));
    fill4(t, kCap);

    /* A reader is online and has not reported since: it may still hold the
     * deleted key's slot. */
    SilentReader reader(q);

    REQUIRE(t.remove(key4(0)));
    REQUIRE(t.upsert(key4(1000), {.owner = 2}) == UpsertResult::full);

    reader.report();
    REQUIRE(t.upsert(key4(1000), {.owner = 2}) == UpsertResult::inserted);
    REQUIRE(t.lookup(key4(1000))->owner == 2);
}

TEST_CASE("readers see consistent records while the writer inserts and deletes",
          "[ownership][concurrency]")
{
    Qsbr q(1);
    OwnershipTable t(params(q.v, 8192));
    constexpr uint32_t kStable = 64;
    /* Stable keys are always present; their record flips between two valid
     * values. Churn keys come and go. */
    auto stable_a = [](uint32_t i) {
        return OwnerRecord{.owner = static_cast<NodeId>(i + 1), .version = 1, .epoch = 10};
    };
    auto stable_b = [](uint32_t i) {
        return OwnerRecord{.owner = static_cast<NodeId>(i + 100), .version = 2, .epoch = 20};
    };
    std::vector<FlowKey> stable;
    for (uint32_t i = 0; i < kStable; ++i) {
        stable.push_back(key4(i));
        REQUIRE(t.upsert(stable.back(), stable_a(i)) == UpsertResult::inserted);
    }

    std::atomic<bool> done{false};
    std::atomic<uint64_t> lookups{0}, misses{0}, torn{0};
    std::thread reader([&] {
        rte_rcu_qsbr_thread_register(q.v, 0);
        rte_rcu_qsbr_thread_online(q.v, 0);
        const FlowKey4 *ptrs[kStable];
        uint32_t hashes[kStable];
        OwnerRecord recs[kStable];
        for (uint32_t i = 0; i < kStable; ++i) {
            ptrs[i] = &stable[i].v4;
            hashes[i] = flow_hash(stable[i]);
        }
        while (!done.load()) {
            const uint64_t hits = t.lookup_bulk4(ptrs, hashes, kStable, recs);
            for (uint32_t i = 0; i < kStable; ++i) {
                if (!((hits >> i) & 1))
                    misses.fetch_add(1);
                else if (!(recs[i] == stable_a(i)) && !(recs[i] == stable_b(i)))
                    torn.fetch_add(1);
            }
            lookups.fetch_add(kStable);
            rte_rcu_qsbr_quiescent(q.v, 0);
        }
        rte_rcu_qsbr_thread_offline(q.v, 0);
        rte_rcu_qsbr_thread_unregister(q.v, 0);
    });

    uint64_t churn_inserts = 0;
    for (uint32_t round = 0; round < 200; ++round) {
        for (uint32_t i = 0; i < 2000; ++i)
            churn_inserts +=
                t.upsert(key6(i % 250 + round % 3), {.owner = 7}) == UpsertResult::inserted;
        for (uint32_t i = 0; i < 2000; ++i) {
            const FlowKey k = key4(1000 + i);
            t.upsert(k, {.owner = 8});
            t.remove(k);
        }
        for (uint32_t i = 0; i < kStable; ++i)
            t.upsert(stable[i], round % 2 ? stable_b(i) : stable_a(i));
    }
    done.store(true);
    reader.join();

    REQUIRE(lookups.load() > 0);
    REQUIRE(misses.load() == 0);
    REQUIRE(torn.load() == 0);
    REQUIRE(churn_inserts > 0);
}

TEST_CASE("idle entries age out by protocol; pinned ones stay", "[ownership][ageing]")
{
    Qsbr q;
    OwnershipTable t(params(q.v, 1024));
    const FlowKey tcp = key4(1, kProtoTcp);
    const FlowKey udp = key4(2, kProtoUdp);
    const FlowKey pinned = key4(3, kProtoUdp);
    const FlowKey fresh = key6(4);
    REQUIRE(t.upsert(tcp, {.owner = 1, .epoch = 100}) == UpsertResult::inserted);
    REQUIRE(t.upsert(udp, {.owner = 1, .epoch = 100}) == UpsertResult::inserted);
    REQUIRE(t.upsert(pinned, {.owner = 1, .epoch = 100, .flags = owner_flag::pinned}) ==
            UpsertResult::inserted);
    REQUIRE(t.upsert(fresh, {.owner = 1, .epoch = 150}) == UpsertResult::inserted);

    /* now = 161: udp (timeout 60) idle 61 s expires; tcp (timeout 300) stays. */
    AgeResult r = t.age(161, 300, 60, 1000);
    REQUIRE(r.examined == 4);
    REQUIRE(r.expired == 1);
    REQUIRE_FALSE(t.lookup(udp));
    REQUIRE(t.lookup(tcp));
    REQUIRE(t.lookup(pinned));

    /* The clock wraps at 2^16 s: ages are computed modulo. */
    r = t.age(static_cast<uint16_t>(100 + 301), 300, 60, 1000);
    REQUIRE(r.expired == 1); /* tcp idle 301 s; the IPv6 TCP entry idle 251 s stays */
    REQUIRE_FALSE(t.lookup(tcp));
    REQUIRE(t.lookup(fresh));
    REQUIRE(t.lookup(pinned));

    /* Stamped a second ahead of the ageing clock (a writer that read the
     * time after the clock's tick): fresh, not 65535 s idle. */
    REQUIRE(t.upsert(udp, {.owner = 1, .epoch = 403}) == UpsertResult::inserted);
    r = t.age(402, 300, 60, 1000);
    REQUIRE(r.examined == 3); /* a new second: a new pass, udp in it */
    REQUIRE(r.expired == 0);
    REQUIRE(t.lookup(udp));
    REQUIRE(t.remove(udp));

    /* Across the 2^16 wrap: stamped at 65500, now 100 → idle 136 s. */
    REQUIRE(t.upsert(udp, {.owner = 1, .epoch = 65500}) == UpsertResult::inserted);
    r = t.age(100, 300, 200, 1000);
    REQUIRE(t.lookup(udp));
    r = t.age(300, 300, 200, 1000);
    REQUIRE_FALSE(t.lookup(udp));

    /* The longest timeout the configuration takes, 32767 s: one second
     * past it the entry expires (a signed 16-bit age wraps there and never
     * would), and a sweep that comes by later still finds it idle. */
    REQUIRE(t.upsert(udp, {.owner = 1, .epoch = 1000}) == UpsertResult::inserted);
    r = t.age(1000 + 32767, 300, 32767, 1000);
    REQUIRE(t.lookup(udp));
    r = t.age(1000 + 32768, 300, 32767, 1000);
    REQUIRE(r.expired == 1);
    REQUIRE_FALSE(t.lookup(udp));
    REQUIRE(t.upsert(udp, {.owner = 1, .epoch = 1000}) == UpsertResult::inserted);
    r = t.age(1000 + 40000, 300, 32767, 1000);
    REQUIRE(r.expired == 1);
    REQUIRE_FALSE(t.lookup(udp));
}

TEST_CASE("ageing works in slices across calls", "[ownership][ageing]")
{
    Qsbr q;
    OwnershipTable t(params(q.v, 4096));
    for (uint32_t i = 0; i < 1000; ++i)
        REQUIRE(t.upsert(key4(i), {.owner = 1, .epoch = 0}) == UpsertResult::inserted);
    uint32_t expired = 0;
    for (int call = 0; call < 20 && t.count(Family::ipv4) > 0; ++call) {
        const AgeResult r = t.age(1000, 300, 60, 100);
        REQUIRE(r.examined <= 100);
        expired += r.expired;
    }
    REQUIRE(expired == 1000);
    REQUIRE(t.count(Family::ipv4) == 0);
}

TEST_CASE("a sparse table is swept once a second, not once a slice", "[ownership][ageing]")
{
    /* rte_hash_iterate walks over empty positions inside one call: every
     * call on a table of a few entries in 2^20 positions walks all of them.
     * The control lcore calls age() 256 times a second. */
    Qsbr q;
    OwnershipTable t(params(q.v, 1u << 20, 1024));
    for (uint32_t i = 0; i < 10; ++i)
        REQUIRE(t.upsert(key4(i), {.owner = 1, .epoch = 500}) == UpsertResult::inserted);

    const AgeResult first = t.age(500, 300, 60, 4096);
    CHECK(first.examined == 10);
    CHECK(first.expired == 0);
    CHECK(first.scanned >= (1u << 20) + 1024); /* both tables, to their ends */
    uint64_t later = 0;
    for (int call = 1; call < 256; ++call)
        later += t.age(500, 300, 60, 4096).scanned;
    CHECK(later == 0);

    /* The next second sweeps again, and ageing still removes. */
    const AgeResult next_second = t.age(501, 300, 60, 4096);
    CHECK(next_second.scanned == first.scanned);
    CHECK(next_second.examined == 10);
    const AgeResult expiry = t.age(502 + 300, 300, 60, 4096);
    CHECK(expiry.expired == 10);
    CHECK(t.count(Family::ipv4) == 0);
}

TEST_CASE("deleting more than the defer queue holds waits for readers and loses no slot",
          "[ownership][rcu]")
{
    constexpr uint32_t kQueue = OwnershipTable::kDeferQueueSize;
    constexpr uint32_t kCap = 1u << 15;
    /* After the first kQueue + 1 deletes, the live keys plus a full queue
     * still leave a free slot: the churn below never needs a slot that is
     * within its grace period, so every insert succeeds whatever the timing. */
    constexpr uint32_t kLive = kCap - (kQueue + 1);
    static_assert(kLive + kQueue < kCap);
    Qsbr q(1);
    OwnershipTable t(params(q.v, kCap));
    REQUIRE(fill_until_full(t, 0, kCap) == kCap);

    /* Reader 0 is online and has not reported: every deleted slot stays in
     * the queue. */
    REQUIRE(rte_rcu_qsbr_thread_register(q.v, 0) == 0);
    rte_rcu_qsbr_thread_online(q.v, 0);
    for (uint32_t i = 0; i < kQueue; ++i)
        REQUIRE(t.remove(key4_spread(i)));
    REQUIRE(t.reclaim_waits() == 0);
    /* Deferred slots are not free yet. */
    REQUIRE(t.upsert(key4_spread(kCap), {.owner = 1}) == UpsertResult::full);

    /* From the first wait on, a second thread reports quiescent states for
     * reader 0 in a loop, so that wait and every later one end. Joined on
     * every exit, failed REQUIREs included. */
    struct Reporter {
        std::atomic<bool> done{false};
        std::thread thread;
        ~Reporter()
        {
            done.store(true);
            if (thread.joinable())
                thread.join();
        }
    } reporter;
    reporter.thread = std::thread([&] {
        while (!reporter.done.load()) {
            if (t.reclaim_waits() != 0)
                rte_rcu_qsbr_quiescent(q.v, 0);
            std::this_thread::yield();
        }
    });

    /* The queue is full of slots within their grace period: this delete
     * must wait, and keep its slot. */
    REQUIRE(t.remove(key4_spread(kQueue)));
    REQUIRE(t.reclaim_waits() == 1);

    /* Churn: eight times the queue size of deletes, each followed by an
     * insert. Live keys are the window [first, first + kLive). */
    uint32_t first = kQueue + 1;
    for (uint32_t i = 0; i < 8 * kQueue; ++i, ++first) {
        REQUIRE(t.remove(key4_spread(first)));
        REQUIRE(t.upsert(key4_spread(first + kLive), {.owner = 2}) == UpsertResult::inserted);
    }
    REQUIRE(t.count(Family::ipv4) == kLive);
    reporter.done.store(true);
    reporter.thread.join();
    rte_rcu_qsbr_thread_offline(q.v, 0);
    rte_rcu_qsbr_thread_unregister(q.v, 0);

    /* Empty the table; with no reader online every slot comes back: the
     * table takes exactly its capacity again. */
    for (uint32_t i = first; i < first + kLive; ++i)
        REQUIRE(t.remove(key4_spread(i)));
    REQUIRE(t.count(Family::ipv4) == 0);
    REQUIRE(fill_until_full(t, first + kLive, kCap) == kCap);
    REQUIRE(t.count(Family::ipv4) == kCap);
}

namespace {

/* Fills a table of @p cap IPv4 entries with random keys; returns how many
 * were inserted before the first refusal. */
uint32_t fill_random(OwnershipTable &t, uint32_t cap, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    uint32_t n = 0;
    for (uint32_t tries = 0; tries <= cap; ++tries) {
        const uint64_t r = rng();
        const FlowKey k =
            FlowKey::make4(static_cast<uint32_t>(r), static_cast<uint16_t>(r >> 32),
                           static_cast<uint32_t>(rng()), static_cast<uint16_t>(r >> 48), kProtoTcp);
        const UpsertResult res = t.upsert(k, {.owner = 1});
        if (res == UpsertResult::full)
            break;
        n += res == UpsertResult::inserted;
    }
    return n;
}

} // namespace

TEST_CASE("a table loaded up to 80% of its slots needs no extendable buckets",
          "[ownership][capacity]")
{
    Qsbr q;
    /* 60% of 2^17 slots, like 10M flows in 2^24 slots. */
    constexpr uint32_t kCap = (1u << 17) * 6 / 10;
    OwnershipTable t(params(q.v, kCap));
    REQUIRE_FALSE(t.extendable(Family::ipv4));
    for (uint64_t seed : {1, 2, 3}) {
        INFO("seed " << seed);
        REQUIRE(fill_random(t, kCap, seed) == kCap);
        REQUIRE(t.count(Family::ipv4) == kCap);
        /* Empty it for the next seed (no reader: slots come back). */
        std::vector<FlowKey> keys;
        t.for_each([&](const FlowKey &k, OwnerRecord) { keys.push_back(k); });
        for (const FlowKey &k : keys)
            REQUIRE(t.remove(k));
    }
}

TEST_CASE("a table loaded near its slots keeps the extendable buckets and its capacity",
          "[ownership][capacity]")
{
    Qsbr q;
    /* 99.9% of 2^17 slots: plain cuckoo insertion refuses near 98%. */
    constexpr uint32_t kCap = (1u << 17) - 128;
    OwnershipTable t(params(q.v, kCap));
    REQUIRE(t.extendable(Family::ipv4));
    REQUIRE(fill_random(t, kCap, 4) == kCap);
    REQUIRE(t.count(Family::ipv4) == kCap);

    /* Small tables keep them whatever their load. */
    OwnershipTable small(params(q.v, 40));
    REQUIRE(small.extendable(Family::ipv4));
    REQUIRE(small.extendable(Family::ipv6));
}
