/* SPDX-License-Identifier: BSD-3-Clause */
/* Membership state machine (time fed in) and failover placement. */
#include <algorithm>
#include <ctime>
#include <random>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "flowhome/gossip_membership.hpp"
#include "flowhome/placement.hpp"

using namespace flowhome;

namespace {

constexpr uint64_t kSuspect = 1500;
constexpr uint64_t kDead = 5000;

MembershipTable table_of(NodeId self, std::vector<NodeId> peers, uint64_t now = 0,
                         uint32_t incarnation = 1)
{
    MembershipParams p;
    p.self = self;
    p.self_incarnation = incarnation;
    p.suspect_after_ms = kSuspect;
    p.dead_after_ms = kDead;
    return MembershipTable(p, peers, now);
}

HeartbeatRecord hb(NodeId node, uint32_t incarnation, uint32_t counter, bool draining = false,
                   NodeState state = NodeState::alive)
{
    HeartbeatRecord h;
    h.node = node;
    h.state = state;
    h.draining = draining;
    h.incarnation = incarnation;
    h.counter = counter;
    return h;
}

std::vector<NodeId> eligible_of(const MembershipTable &t)
{
    return {t.eligible().begin(), t.eligible().end()};
}

NodeState state_of(const MembershipTable &t, NodeId n)
{
    const Member *m = t.find(n);
    REQUIRE(m != nullptr);
    return m->state;
}

} // namespace

TEST_CASE("peers start suspect and join with their first heartbeat", "[gossip][membership]")
{
    MembershipTable t = table_of(1, {2, 3, 1});
    CHECK(t.members().size() == 3);
    CHECK(state_of(t, 1) == NodeState::alive);
    CHECK(state_of(t, 2) == NodeState::suspect);
    CHECK(eligible_of(t) == std::vector<NodeId>{1});
    const uint64_t g = t.generation();
    const HeartbeatResult r = t.on_heartbeat(hb(2, 10, 1), 100);
    CHECK(r.outcome == HeartbeatOutcome::joined);
    CHECK(r.changed);
    CHECK(t.generation() > g);
    CHECK(state_of(t, 2) == NodeState::alive);
    CHECK(t.find(2)->incarnation == 10);
    CHECK(eligible_of(t) == std::vector<NodeId>{1, 2});
}

TEST_CASE("silence makes a node suspect, then dead; heartbeats bring it back",
          "[gossip][membership]")
{
    MembershipTable t = table_of(1, {2, 3});
    REQUIRE(t.on_heartbeat(hb(2, 10, 1), 0).outcome == HeartbeatOutcome::joined);
    REQUIRE(t.on_heartbeat(hb(3, 20, 1), 0).outcome == HeartbeatOutcome::joined);
    std::vector<MemberChange> changes;
    auto record = [&](const MemberChange &c) { changes.push_back(c); };

    CHECK(t.tick(kSuspect - 1, record) == 0);
    REQUIRE(t.on_heartbeat(hb(3, 20, 2), kSuspect - 1).outcome == HeartbeatOutcome::refreshed);
    CHECK(t.tick(kSuspect, record) == 1);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].node == 2);
    CHECK(changes[0].from == NodeState::alive);
    CHECK(changes[0].to == NodeState::suspect);
    CHECK(eligible_of(t) == std::vector<NodeId>{1, 3});
    CHECK(t.effective_owner(2, 1234) == 2); /* suspect keeps its flows */

    /* A heartbeat clears suspicion. */
    HeartbeatResult r = t.on_heartbeat(hb(2, 10, 2), 2000);
    CHECK(r.outcome == HeartbeatOutcome::refreshed);
    CHECK(r.changed);
    CHECK(state_of(t, 2) == NodeState::alive);

    changes.clear();
    CHECK(t.tick(2000 + kSuspect, record) == 2); /* 2 and 3 both suspect now */
    CHECK(state_of(t, 3) == NodeState::suspect);
    CHECK(t.tick(kSuspect - 1 + kDead - 1, record) == 0); /* 3 was last heard at 1499 */
    CHECK(t.tick(kSuspect - 1 + kDead, record) == 1);
    CHECK(state_of(t, 3) == NodeState::dead);
    CHECK(changes.back().from == NodeState::suspect);
    CHECK(changes.back().to == NodeState::dead);
    CHECK(t.tick(100000) == 1); /* 2 dies too; dead nodes do not change again */
    CHECK(t.tick(200000) == 0);
    CHECK(eligible_of(t) == std::vector<NodeId>{1});

    /* Death is final for the incarnation; a new one joins. */
    r = t.on_heartbeat(hb(3, 20, 50), 200001);
    CHECK(r.outcome == HeartbeatOutcome::dead_incarnation);
    CHECK(state_of(t, 3) == NodeState::dead);
    r = t.on_heartbeat(hb(3, 21, 1), 200002);
    CHECK(r.outcome == HeartbeatOutcome::joined);
    CHECK(state_of(t, 3) == NodeState::alive);
    CHECK(t.find(3)->incarnation == 21);
}

TEST_CASE("a node silent past the dead timeout dies in one tick", "[gossip][membership]")
{
    MembershipTable t = table_of(1, {2}, 1000);
    std::vector<MemberChange> changes;
    CHECK(t.tick(1000 + kDead, [&](const MemberChange &c) { changes.push_back(c); }) == 1);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].from == NodeState::suspect); /* never heard */
    CHECK(changes[0].to == NodeState::dead);
    /* A clock that goes backwards does not kill anyone. */
    MembershipTable u = table_of(1, {2}, 1000);
    REQUIRE(u.on_heartbeat(hb(2, 1, 1), 5000).changed);
    CHECK(u.tick(10) == 0);
}

TEST_CASE("heartbeat outcomes for restarts, stale and foreign heartbeats", "[gossip][membership]")
{
    MembershipTable t = table_of(1, {2, 3});
    REQUIRE(t.on_heartbeat(hb(2, 10, 5), 0).outcome == HeartbeatOutcome::joined);
    CHECK(t.on_heartbeat(hb(2, 10, 5), 1).outcome == HeartbeatOutcome::stale_counter);
    CHECK(t.on_heartbeat(hb(2, 10, 4), 1).outcome == HeartbeatOutcome::stale_counter);
    CHECK(t.on_heartbeat(hb(2, 9, 100), 1).outcome == HeartbeatOutcome::stale_incarnation);
    CHECK(t.on_heartbeat(hb(9, 1, 1), 1).outcome == HeartbeatOutcome::unknown_node);
    CHECK(t.on_heartbeat(hb(1, 1, 1), 1).outcome == HeartbeatOutcome::self);
    /* Restart before anyone declared it dead: its old flows are orphans. */
    const HeartbeatResult r = t.on_heartbeat(hb(2, 11, 1), 2);
    CHECK(r.outcome == HeartbeatOutcome::restarted);
    CHECK(r.changed);
    CHECK(t.find(2)->counter == 1);
    CHECK(t.on_heartbeat(hb(2, 11, 2), 3).outcome == HeartbeatOutcome::refreshed);

    /* The counter wraps (49 days at one heartbeat a millisecond): serial order. */
    CHECK(t.on_heartbeat(hb(2, 11, 0x7FFFFFF0u), 4).outcome == HeartbeatOutcome::refreshed);
    CHECK(t.on_heartbeat(hb(2, 11, 0xFFFFFFE0u), 4).outcome == HeartbeatOutcome::refreshed);
    CHECK(t.on_heartbeat(hb(2, 11, 0xFFFFFFFFu), 4).outcome == HeartbeatOutcome::refreshed);
    CHECK(t.on_heartbeat(hb(2, 11, 0), 5).outcome == HeartbeatOutcome::refreshed);
    CHECK(t.on_heartbeat(hb(2, 11, 1), 6).outcome == HeartbeatOutcome::refreshed);
    CHECK(t.on_heartbeat(hb(2, 11, 0xFFFFFFFFu), 7).outcome == HeartbeatOutcome::stale_counter);
    CHECK(state_of(t, 2) == NodeState::alive);
}

TEST_CASE("draining nodes keep their flows but take no new ones", "[gossip][membership]")
{
    MembershipTable t = table_of(1, {2, 3});
    t.on_heartbeat(hb(2, 1, 1), 0);
    t.on_heartbeat(hb(3, 1, 1), 0);
    CHECK(eligible_of(t) == std::vector<NodeId>{1, 2, 3});
    const HeartbeatResult r = t.on_heartbeat(hb(2, 1, 2, true), 10);
    CHECK(r.changed);
    CHECK(t.find(2)->draining);
    CHECK(eligible_of(t) == std::vector<NodeId>{1, 3});
    CHECK(t.effective_owner(2, 42) == 2);
    t.set_self_draining(true);
    CHECK(eligible_of(t) == std::vector<NodeId>{3});
    CHECK(t.next_self_heartbeat().draining);
    t.set_self_draining(false);
    CHECK(eligible_of(t) == std::vector<NodeId>{1, 3});
}

TEST_CASE("a node announcing its own death leaves at once", "[gossip][membership]")
{
    MembershipTable t = table_of(1, {2, 3});
    t.on_heartbeat(hb(2, 1, 1), 0);
    const HeartbeatResult r = t.on_heartbeat(hb(2, 1, 2, false, NodeState::dead), 5);
    CHECK(r.outcome == HeartbeatOutcome::left);
    CHECK(state_of(t, 2) == NodeState::dead);
    CHECK(t.effective_owner(2, 77) == failover_owner(77, 2, t.eligible()));
    /* Not a member: its flows stay its own, as the workers route them
     * (dropped there as owner_unreachable), not its failover owner's. */
    REQUIRE(t.find(9) == nullptr);
    CHECK(t.effective_owner(9, 77) == 9);
}

TEST_CASE("being reported dead at our incarnation or a later one asks for a refutation",
          "[gossip][membership]")
{
    MembershipTable t = table_of(1, {2}, 0, 4);
    std::vector<uint8_t> buf(256);
    auto heartbeat_with_views = [&](std::span<const MemberView> views, uint32_t counter) {
        FrameWriter w(buf, buf.size());
        FrameHeader h;
        h.sender = 2;
        h.incarnation = 1;
        w.begin(h);
        REQUIRE(w.add_heartbeat(hb(2, 1, counter), views));
        const std::span<uint8_t> body = w.finish();
        std::vector<uint8_t> frame(body.begin(), body.end());
        frame.resize(frame.size() + kGossipTagLen);
        FrameReader r;
        REQUIRE(r.open(frame) == GossipStatus::ok);
        GossipRecord rec;
        REQUIRE(r.next(rec));
        return t.on_heartbeat(rec.heartbeat, counter);
    };
    auto heartbeat_with_view = [&](MemberView about_us, uint32_t counter) {
        return heartbeat_with_views(std::span(&about_us, 1), counter);
    };
    CHECK_FALSE(heartbeat_with_view({1, NodeState::suspect, false, 4}, 1).refute);
    CHECK_FALSE(heartbeat_with_view({1, NodeState::dead, false, 3}, 2).refute);
    CHECK(heartbeat_with_view({1, NodeState::dead, false, 4}, 3).refute);
    CHECK(t.bump_self_incarnation() == 5);
    CHECK(t.bump_self_incarnation(100) == 101);
    CHECK(t.next_self_heartbeat().counter == 1);
    CHECK_FALSE(heartbeat_with_view({1, NodeState::dead, false, 4}, 4).refute);
    /* Dead at a later incarnation than ours: we restarted with a smaller
     * one (the clock stepped back), and peers drop our frames until we
     * take one past it. Alive there only means they have not noticed yet. */
    CHECK_FALSE(heartbeat_with_view({1, NodeState::alive, false, 500}, 5).refute);
    const HeartbeatResult later = heartbeat_with_view({1, NodeState::dead, false, 500}, 6);
    CHECK(later.refute);
    CHECK(later.refuted_incarnation == 500);
    CHECK(t.bump_self_incarnation(later.refuted_incarnation) == 501);
    /* A view naming us more than once: the refutation goes past the
     * latest death, whichever entry comes last (one past another would be
     * refuted again by the next heartbeat, a new life each time). */
    const MemberView thrice[] = {{1, NodeState::dead, false, 900},
                                 {1, NodeState::dead, false, 600},
                                 {1, NodeState::alive, false, 0}};
    const HeartbeatResult all = heartbeat_with_views(thrice, 7);
    CHECK(all.refute);
    CHECK(all.refuted_incarnation == 900);
}

TEST_CASE("our view lists every peer", "[gossip][membership]")
{
    MembershipTable t = table_of(5, {2, 9, 7});
    t.on_heartbeat(hb(9, 3, 1, true), 0);
    std::vector<MemberView> v(8);
    REQUIRE(t.view(v) == 3);
    CHECK(v[0] == MemberView{2, NodeState::suspect, false, 0});
    CHECK(v[1] == MemberView{7, NodeState::suspect, false, 0});
    CHECK(v[2] == MemberView{9, NodeState::alive, true, 3});
    std::vector<MemberView> small(2);
    CHECK(t.view(small) == 2);
}

TEST_CASE("bad membership parameters are refused at start-up", "[gossip][membership]")
{
    MembershipParams p;
    p.self = 1;
    const std::vector<NodeId> dup{2, 3, 2};
    CHECK_THROWS_WITH(MembershipTable(p, dup, 0), Catch::Contains("2 is listed twice"));
    const std::vector<NodeId> zero{0};
    CHECK_THROWS_WITH(MembershipTable(p, zero, 0), Catch::Contains("outside 1..4095"));
    p.dead_after_ms = p.suspect_after_ms;
    CHECK_THROWS_AS(MembershipTable(p, std::vector<NodeId>{}, 0), std::invalid_argument);
    p.dead_after_ms = 5000;
    p.self = 0;
    CHECK_THROWS_AS(MembershipTable(p, std::vector<NodeId>{}, 0), std::invalid_argument);
}

TEST_CASE("failover_owner is rendezvous over the eligible nodes minus the dead one",
          "[gossip][membership]")
{
    std::vector<NodeId> live{1, 2, 4, 5, 9};
    const std::vector<NodeId> with_dead{1, 2, 3, 4, 5, 9};
    std::mt19937 rng(99);
    for (uint32_t i = 0; i < 5000; ++i) {
        const uint32_t h = i * 2654435761u;
        const NodeId expect = rendezvous_pick(h, live);
        REQUIRE(failover_owner(h, 3, live) == expect);
        REQUIRE(failover_owner(h, 3, with_dead) == expect); /* listed, still excluded */
        std::shuffle(live.begin(), live.end(), rng);
        REQUIRE(failover_owner(h, 3, live) == expect);
        /* Only the dead node's flows move: the others keep their owner. */
        const NodeId before = rendezvous_pick(h, with_dead);
        if (before != 3)
            REQUIRE(expect == before);
    }
    CHECK(failover_owner(1, 3, std::vector<NodeId>{3}) == kInvalidNode);
    CHECK(failover_owner(1, 3, std::vector<NodeId>{}) == kInvalidNode);
}

TEST_CASE("every node computes the same failover after the same heartbeats", "[gossip][membership]")
{
    const std::vector<NodeId> all{1, 2, 3, 4, 5};
    std::mt19937 rng(2024);
    std::vector<MembershipTable> tables;
    for (const NodeId self : all) {
        std::vector<NodeId> peers = all;
        std::shuffle(peers.begin(), peers.end(), rng); /* configured in any order */
        tables.push_back(table_of(self, peers, 0, 1));
    }
    /* Everyone hears everyone for a while, in a different order per node. */
    for (uint32_t beat = 1; beat <= 3; ++beat) {
        for (MembershipTable &t : tables) {
            std::vector<NodeId> order = all;
            std::shuffle(order.begin(), order.end(), rng);
            for (const NodeId n : order)
                t.on_heartbeat(hb(n, 1, beat), beat * 1000);
        }
    }
    for (const MembershipTable &t : tables)
        REQUIRE(eligible_of(t) == all);
    /* Node 3 stops; the others keep beating; node 4 starts draining. */
    for (uint32_t beat = 4; beat <= 12; ++beat) {
        if (beat == 7)
            tables[3].set_self_draining(true); /* node 4 itself */
        for (MembershipTable &t : tables) {
            std::vector<NodeId> order{1, 2, 4, 5};
            std::shuffle(order.begin(), order.end(), rng);
            for (const NodeId n : order)
                t.on_heartbeat(hb(n, 1, beat, n == 4 && beat > 6), beat * 1000);
            t.tick(beat * 1000);
        }
    }
    std::vector<const MembershipTable *> survivors;
    for (const MembershipTable &t : tables)
        if (t.self_incarnation() == 1 && t.find(3)->state == NodeState::dead)
            survivors.push_back(&t);
    REQUIRE(survivors.size() == 4); /* every table but node 3's own */
    for (const MembershipTable *t : survivors)
        REQUIRE(eligible_of(*t) == std::vector<NodeId>{1, 2, 5});
    for (uint32_t i = 0; i < 5000; ++i) {
        const uint32_t h = i * 0x9E3779B1u;
        const NodeId first = survivors[0]->effective_owner(3, h);
        REQUIRE(first != 3);
        REQUIRE(first != 4); /* draining takes no new flows */
        for (const MembershipTable *t : survivors) {
            REQUIRE(t->effective_owner(3, h) == first);
            REQUIRE(t->effective_owner(4, h) == 4);
        }
    }
}

TEST_CASE("two starts within one second get different incarnations", "[gossip][membership]")
{
    /* A crash and a restart by systemd take well under a second; the
     * restart must still be a newer incarnation. */
    const auto called = static_cast<uint32_t>(time(nullptr));
    const uint32_t first = new_incarnation();
    const uint32_t second = new_incarnation();
    CHECK(first > called);
    CHECK(second > first);
}
