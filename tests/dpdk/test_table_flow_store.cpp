/* SPDX-License-Identifier: BSD-3-Clause */
/* TableFlowStore over a real OwnershipTable: scan covers both families,
 * the cursor resumes, 0 at the end, forged cursors end the walk. And the
 * control loop's ageing of that table with a gossip engine over it, and
 * its reports of the gossip group at start and stop. */
#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "flowhome/control.hpp"
#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_transport.hpp"
#include "flowhome/map_flow_store.hpp"
#include "flowhome/table_flow_store.hpp"

#include "qsbr.hpp"

using namespace flowhome;
using flowhome::test::Qsbr;

namespace {

int g_seq = 0;

OwnershipTable::Params table_params(rte_rcu_qsbr *qsbr)
{
    return {.name = "tfs" + std::to_string(++g_seq),
            .capacity_ipv4 = 1024,
            .capacity_ipv6 = 256,
            .socket_id = -1,
            .qsbr = qsbr};
}

GossipParams gossip_params(NodeId self, NodeId peer)
{
    GossipParams p;
    p.self = self;
    p.cluster_id = 0x0A6E;
    p.peers = {peer};
    return p;
}

/* Node 1's table and store, and what its control loop needs besides. */
struct ControlSetup {
    Qsbr q;
    OwnershipTable table{table_params(q.v)};
    TableFlowStore store{table};
    KeyRing keys;
    SharedClock clock;
    std::atomic<bool> stop{false};

    ControlSetup() { REQUIRE(keys.add(1, std::vector<uint8_t>(32, 0x5a))); }

    ControlLoop::Params loop_params()
    {
        ControlLoop::Params lp;
        lp.self = 1;
        lp.table = &table;
        lp.clock = &clock;
        lp.stop = &stop;
        return lp;
    }
};

FlowKey key4(uint32_t i)
{
    /* 203.0.113.x clients toward VIP 198.51.100.1:80 */
    return FlowKey::make4(htonl(0xCB007100u | (i & 0xFF)), htons(static_cast<uint16_t>(1024 + i)),
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

TEST_CASE("TableFlowStore hands the caller's Presence to the table", "[gossip][store]")
{
    Qsbr q;
    OwnershipTable table(table_params(q.v));
    TableFlowStore store(table);
    /* absent: inserted and counted, without a look. */
    REQUIRE(store.upsert(key4(1), OwnerRecord{1, 1, 0, 0, 0}, Presence::absent) ==
            UpsertResult::inserted);
    /* present: replaced, not counted again. */
    REQUIRE(store.upsert(key4(1), OwnerRecord{2, 2, 0, 0, 0}, Presence::present) ==
            UpsertResult::updated);
    /* unknown: the table looks, and finds it. */
    REQUIRE(store.upsert(key4(1), OwnerRecord{3, 3, 0, 0, 0}, Presence::unknown) ==
            UpsertResult::updated);
    REQUIRE(store.upsert(key6(1), OwnerRecord{3, 1, 0, 0, 0}, Presence::unknown) ==
            UpsertResult::inserted);
    CHECK(store.size() == 2);
    CHECK(table.count(Family::ipv4) == 1);
    CHECK(store.lookup(key4(1))->owner == 3);
    /* A key of no family is refused whatever the hint. */
    CHECK(store.upsert(FlowKey{}, OwnerRecord{1, 1, 0, 0, 0}, Presence::absent) ==
          UpsertResult::error);
}

TEST_CASE("TableFlowStore scans both tables with a resumable cursor", "[gossip][store]")
{
    Qsbr q;
    OwnershipTable table(table_params(q.v));
    TableFlowStore store(table);
    constexpr uint16_t n4 = 300;
    constexpr uint16_t n6 = 70;
    /* IPv4 keys passed as absent, IPv6 ones as unknown: the table counts
     * an insert either way. */
    for (uint16_t i = 0; i < n4; ++i)
        REQUIRE(store.upsert(key4(i), OwnerRecord{1, i, 0, 0, 0}, Presence::absent) ==
                UpsertResult::inserted);
    for (uint16_t i = 0; i < n6; ++i)
        REQUIRE(store.upsert(key6(i), OwnerRecord{2, i, 0, 0, 0}, Presence::unknown) ==
                UpsertResult::inserted);
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

TEST_CASE("a flow of ours that expires is released to every node; others' are removed",
          "[gossip][ageing]")
{
    ControlSetup n;
    OwnershipTable &table = n.table;
    /* Node 1 (the table's node) and node 2 send straight to each other. */
    MapFlowStore peer_store;
    uint64_t now_us = 0;
    GossipEngine *to_engine = nullptr;
    GossipEngine peer(
        gossip_params(2, 1), n.keys, peer_store,
        [&](std::span<const uint8_t> f) {
            if (to_engine != nullptr)
                to_engine->receive(f, now_us);
        },
        0);
    GossipEngine engine(
        gossip_params(1, 2), n.keys, n.store,
        [&](std::span<const uint8_t> f) { peer.receive(f, now_us); }, 0);
    to_engine = &engine;

    ControlLoop::Params lp = n.loop_params();
    lp.timeouts.udp_idle_timeout_s = 60;
    SECTION("with gossip")
    {
        lp.engine = &engine;
    }
    SECTION("without gossip: removed, as every expired entry") {}
    ControlLoop loop(lp);

    const FlowKey ours = key6(1);   /* UDP: 60 s */
    const FlowKey theirs = key6(2); /* UDP, owned by node 2 */
    engine.local_claim(ours, 0);
    engine.flush(0);
    REQUIRE(table.upsert(theirs, {.owner = 2, .version = 1, .epoch = 0}) == UpsertResult::inserted);
    if (lp.engine != nullptr)
        REQUIRE(peer_store.lookup(ours));

    /* 61 s of heartbeats (every node stays alive, so no flow fails over),
     * no traffic: then both flows are idle past the timeout. */
    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t t0 = rte_rdtsc();
    auto run_until = [&](uint64_t until_us) {
        while (now_us < until_us) {
            now_us += 100'000;
            if (lp.engine != nullptr) /* else node 1 is silent: node 2 would take its flows */
                peer.tick(now_us);
            loop.poll_once(t0 + now_us * hz / 1'000'000);
        }
    };
    run_until(60'000'000);
    CHECK(loop.stats().aged_out.get() == 0);
    run_until(61'500'000);
    CHECK(loop.stats().aged_out.get() == 2);
    CHECK_FALSE(table.lookup(theirs));
    if (lp.engine == nullptr) {
        CHECK_FALSE(table.lookup(ours));
        return;
    }
    /* Ours stays as a tombstone, and its release reaches the peer with
     * the next batch: the peer does not keep it a timeout longer, and its
     * digest of node 1 agrees with node 1's. */
    const std::optional<OwnerRecord> here = table.lookup(ours);
    REQUIRE(here);
    CHECK((here->flags & gossip_flag::released) != 0);
    run_until(61'600'000); /* the batch interval */
    const std::optional<OwnerRecord> there = peer_store.lookup(ours);
    REQUIRE(there);
    CHECK((there->flags & gossip_flag::released) != 0);
    CHECK(peer.stats().releases_applied.get() == 1);

    /* The tombstone expires in turn, and is then removed. */
    run_until(123'000'000);
    CHECK_FALSE(table.lookup(ours));
    CHECK(loop.stats().aged_out.get() == 3);
}

TEST_CASE("an idle control loop sleeps longer the longer it idles, and wakes for its deadlines",
          "[gossip][control]")
{
    ControlSetup n;
    const GossipParams gp = gossip_params(1, 2);
    GossipEngine engine(
        gp, n.keys, n.store, [](std::span<const uint8_t>) {}, 0);
    ControlLoop::Params lp = n.loop_params();
    lp.backoff.sleep_us = 100'000; /* the longest the loader allows */
    lp.engine = &engine;
    ControlLoop loop(lp);

    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t t = rte_rdtsc() + hz; /* 1 s in: the start-up timers have run */
    loop.poll_once(t);
    /* An ageing slice every 1/256 s. */
    CHECK(loop.idle_sleep_us(t) <= 1'000'000 / 256);
    CHECK(loop.idle_sleep_us(t) >= 1);
    /* A claim opens a batch, sent 1 ms (batch_interval_us) after. */
    engine.local_claim(key4(1), 1'000'000); /* the loop's now: t is 1 s after its start */
    CHECK(loop.idle_sleep_us(t) <= gp.batch_interval_us);
    /* Idle for long: the sleep doubles from sleep_us up to 1 ms, still no
     * later than the next ageing slice. */
    lp.engine = nullptr;
    lp.backoff.sleep_us = 50;
    ControlLoop quiet(lp);
    quiet.poll_once(t);
    CHECK(quiet.idle_sleep_us(t, 0) == 50);
    CHECK(quiet.idle_sleep_us(t, 1) == 100);
    CHECK(quiet.idle_sleep_us(t, 4) == 800);
    CHECK(quiet.idle_sleep_us(t, 5) == ControlLoop::kMaxIdleSleepUs);
    CHECK(quiet.idle_sleep_us(t, ControlLoop::kSleepDoublingsMax) == ControlLoop::kMaxIdleSleepUs);
    const uint64_t slice_tsc = hz / 256;
    CHECK(quiet.idle_sleep_us(t + slice_tsc - hz / 10'000, 5) <= 100); /* the slice in 0.1 ms */
    /* Busy polling: never asleep. */
    lp.backoff.sleep_us = 0;
    ControlLoop busy(lp);
    busy.poll_once(t);
    CHECK(busy.idle_sleep_us(t) == 0);
}

TEST_CASE("the control loop joins the gossip group as it starts and leaves it as it stops",
          "[gossip][control]")
{
    ControlSetup n;
    rte_mempool *pool = rte_pktmbuf_pool_create("cl_pool", 63, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    rte_ring *tx = rte_ring_create("cl_tx", 16, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    rte_ring *in = rte_ring_create("cl_in", 16, 0, RING_F_SC_DEQ);
    REQUIRE((pool != nullptr && tx != nullptr && in != nullptr));
    {
        GossipTransport::Params tp;
        tp.tx_ring = tx;
        tp.handoff = in;
        tp.pool = pool;
        tp.src_mac = MacAddr{{0x02, 0, 0, 0, 0, 1}};
        tp.src = *IpAddr::parse("192.0.2.1");
        tp.group = *IpAddr::parse("239.1.1.1");
        tp.report_interval_s = 30;
        GossipTransport transport(tp);
        GossipEngine engine(
            gossip_params(1, 2), n.keys, n.store, [](std::span<const uint8_t>) {}, 0);
        ControlLoop::Params lp = n.loop_params();
        lp.engine = &engine;
        lp.transport = &transport;
        ControlLoop loop(lp);

        /* The IGMPv3 record type of each report in the ring, in order. */
        auto records = [tx] {
            std::vector<uint8_t> types;
            void *obj;
            while (rte_ring_dequeue(tx, &obj) == 0) {
                auto *m = static_cast<rte_mbuf *>(obj);
                const auto *d = rte_pktmbuf_mtod(m, const uint8_t *);
                constexpr size_t kIgmp = 14 + 24; /* Ethernet, IPv4 with Router Alert */
                CHECK(d[kIgmp] == 0x22);          /* a version 3 membership report */
                types.push_back(d[kIgmp + 8]);
                rte_pktmbuf_free(m);
            }
            return types;
        };
        loop.poll_once(rte_rdtsc());
        CHECK(records() == std::vector<uint8_t>{4}); /* CHANGE_TO_EXCLUDE {}: joined */
        n.stop = true;
        CHECK(loop.run() == 0);
        CHECK(records() == std::vector<uint8_t>{3, 3}); /* CHANGE_TO_INCLUDE {}: left */
    }
    CHECK(rte_mempool_avail_count(pool) == 63);
    rte_ring_free(in);
    rte_ring_free(tx);
    rte_mempool_free(pool);
}
