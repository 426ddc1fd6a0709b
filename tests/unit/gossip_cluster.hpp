/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An in-test cluster for the gossip engine tests: N GossipEngines over
 * MapFlowStores, their frames collected in a vector and delivered
 * explicitly (to every other running node, unless a filter drops them), in
 * explicit time.
 */
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/map_flow_store.hpp"
#include "gossip_test_util.hpp"

namespace flowhome::test {

/* A store that checks what the workers rely on (a record reaches the
 * table only after its owner's life tag was published), and whose walk can
 * be made to miss entries, as the table's does when entries move under it. */
class TestStore : public MapFlowStore {
public:
    explicit TestStore(const std::atomic<uint8_t> *life) : life_(life) {}
    UpsertResult upsert(const FlowKey &key, OwnerRecord r, Presence presence) noexcept override
    {
        if (r.owner <= kMaxNodeId && life_[r.owner].load() != r.reserved)
            ++unpublished;
        return MapFlowStore::upsert(key, r, presence);
    }
    uint32_t scan(uint64_t &cursor, uint32_t budget,
                  const std::function<void(const FlowKey &, OwnerRecord)> &fn) override
    {
        if (!hide)
            return MapFlowStore::scan(cursor, budget, fn);
        return MapFlowStore::scan(cursor, budget, [&](const FlowKey &k, OwnerRecord r) {
            if (!hide(k, r))
                fn(k, r);
            else if (moves)
                ++generation_; /* as if it had moved behind the walk */
        });
    }
    bool remove(const FlowKey &key) noexcept override
    {
        if (moves)
            ++generation_;
        return MapFlowStore::remove(key);
    }
    uint64_t generation() const noexcept override { return generation_; }
    uint64_t unpublished = 0; /* records written with a tag the workers did not have */
    /* True: the walk does not show this entry this time. */
    std::function<bool(const FlowKey &, OwnerRecord)> hide;
    /* Like the node's table: a removal, or a hidden entry, changes the
     * generation (entries may have moved under a walk). */
    bool moves = false;

private:
    const std::atomic<uint8_t> *life_;
    uint64_t generation_ = 0;
};

struct TestNode {
    NodeId id = kInvalidNode;
    bool up = true;
    /* What the engine publishes to its workers (GossipParams::life_out). */
    std::unique_ptr<std::atomic<uint8_t>[]> life;
    std::unique_ptr<TestStore> store;
    std::unique_ptr<GossipEngine> engine;
};

struct SentFrame {
    NodeId from;
    std::vector<uint8_t> bytes;
};

class TestCluster {
public:
    /** Nodes 1..n; @p tweak adjusts the shared parameters. */
    explicit TestCluster(size_t n, const std::function<void(GossipParams &)> &tweak = {})
    {
        base.cluster_id = kTestCluster;
        base.batch_interval_us = 1000;
        base.heartbeat_interval_ms = 20;
        base.suspect_after_ms = 100;
        base.dead_after_ms = 300;
        base.reannounce_interval_ms = 400;
        base.sync_timeout_ms = 100;
        if (tweak)
            tweak(base);
        for (size_t i = 0; i < n; ++i)
            ids.push_back(static_cast<NodeId>(i + 1));
        nodes.resize(n);
        for (size_t i = 0; i < n; ++i)
            start(i, 1);
    }

    /** (Re)starts node @p i with an empty store and incarnation @p inc. */
    void start(size_t i, uint32_t inc)
    {
        GossipParams p = base;
        p.self = ids[i];
        p.incarnation = inc;
        for (const NodeId id : ids)
            if (id != p.self)
                p.peers.push_back(id);
        TestNode &n = nodes[i];
        n.id = p.self;
        n.up = true;
        n.engine.reset();
        n.life = std::make_unique<std::atomic<uint8_t>[]>(size_t{kMaxNodeId} + 1);
        p.life_out = n.life.get();
        n.store = std::make_unique<TestStore>(n.life.get());
        const NodeId self = p.self;
        n.engine = std::make_unique<GossipEngine>(
            p, ring, *n.store,
            [this, self](std::span<const uint8_t> f) {
                wire.push_back(SentFrame{self, {f.begin(), f.end()}});
            },
            now);
    }

    void kill(size_t i) { nodes[i].up = false; }

    /** Delivers every frame sent so far (and those sent while delivering). */
    void deliver()
    {
        while (!wire.empty()) {
            std::vector<SentFrame> batch;
            batch.swap(wire);
            for (const SentFrame &f : batch)
                for (TestNode &n : nodes)
                    if (n.up && n.id != f.from && (!drop || !drop(f.from, n.id, f.bytes)))
                        n.engine->receive(f.bytes, now);
        }
    }

    /** Advances time by @p ms in 1 ms steps, ticking every running node. */
    void run_ms(uint64_t ms)
    {
        for (uint64_t t = 0; t < ms; ++t) {
            now += 1000;
            for (TestNode &n : nodes)
                if (n.up)
                    n.engine->tick(now);
            deliver();
        }
    }

    GossipEngine &engine(size_t i) { return *nodes[i].engine; }
    TestStore &store(size_t i) { return *nodes[i].store; }
    const std::atomic<uint8_t> &life(size_t i, NodeId owner) { return nodes[i].life[owner]; }

    KeyRing ring = ring_of({{kTestKeyId, 1}});
    GossipParams base;
    std::vector<NodeId> ids;
    std::vector<TestNode> nodes;
    std::vector<SentFrame> wire;
    /** Return true to lose the frame on its way from @p from to @p to. */
    std::function<bool(NodeId from, NodeId to, const std::vector<uint8_t> &)> drop;
    uint64_t now = 1'000'000'000; /* 1000 s: epochs are nonzero */
};

} // namespace flowhome::test
