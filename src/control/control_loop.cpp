/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/control.hpp"

#include <rte_rcu_qsbr.h>

#include "flowhome/gossip_engine.hpp"
#include "flowhome/gossip_transport.hpp"
#include "flowhome/log_relay.hpp"
#include "flowhome/worker.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <thread>

#include <rte_cycles.h>
#include <rte_pause.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

namespace flowhome {
namespace {

constexpr unsigned kDrainBurst = 64;
/* Entries examined per ageing slice, and slices per second: a full table
 * of 1M entries is swept in about 1 s (10M in 10 s), a slice holding the
 * loop for about 0.3 ms (bench/control_bench). */
constexpr uint32_t kAgeBudget = 4096;
constexpr uint64_t kAgeSlicesPerSecond = 256;

uint16_t clamp_timeout(uint32_t s) noexcept
{
    /* Record ages are computed modulo 2^16 s. */
    return static_cast<uint16_t>(s > 32767 ? 32767 : s);
}

} // namespace

/*
 * An operator request changes hands through `state`: the caller may abandon
 * it (timeout) only while it is still pending, and the control lcore may run
 * it only if it can take it from pending first. Whoever loses the exchange
 * knows the other side owns the request: an abandoned request is deleted by
 * the control lcore unrun (fn refers to the caller's stack, which is gone);
 * a running one is waited for by the caller, which then deletes it.
 */
struct ControlLoop::OperatorRequest {
    enum State : uint8_t { pending, running, done, abandoned };
    const std::function<void(uint64_t)> *fn;
    std::atomic<uint8_t> state{pending};
};

ControlLoop::ControlLoop(const Params &p) noexcept : p_(p), start_tsc_(rte_rdtsc())
{
    if (p_.engine != nullptr)
        logged_.resize(size_t{kMaxNodeId} + 1);
    /* Names are per process; several loops may exist (tests, simulators). */
    static std::atomic<unsigned> serial{0};
    const std::string name = "fh_op_" + std::to_string(serial.fetch_add(1));
    /* Without the ring, run_on_control() refuses every request (no_queue). */
    requests_ = rte_ring_create(name.c_str(), 64, SOCKET_ID_ANY, RING_F_SC_DEQ);
}

ControlLoop::~ControlLoop()
{
    if (requests_ == nullptr)
        return;
    /* The loop has stopped: whatever is left was abandoned by its caller. */
    void *obj;
    while (rte_ring_dequeue(requests_, &obj) == 0)
        delete static_cast<OperatorRequest *>(obj);
    rte_ring_free(requests_);
}

ControlLoop::Run ControlLoop::run_on_control(const std::function<void(uint64_t)> &fn,
                                             std::chrono::milliseconds timeout) noexcept
{
    if (requests_ == nullptr)
        return Run::no_queue;
    auto *req = new (std::nothrow) OperatorRequest;
    if (req == nullptr)
        return Run::no_queue;
    req->fn = &fn;
    if (rte_ring_enqueue(requests_, req) != 0) {
        delete req;
        return Run::queue_full;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        uint8_t st = req->state.load(std::memory_order_acquire);
        if (st == OperatorRequest::done) {
            delete req;
            return Run::done;
        }
        if (st == OperatorRequest::pending && std::chrono::steady_clock::now() >= deadline &&
            req->state.compare_exchange_strong(st, OperatorRequest::abandoned,
                                               std::memory_order_acq_rel))
            return Run::timed_out; /* the control lcore deletes it */
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
}

unsigned ControlLoop::serve_operator_requests(uint64_t now) noexcept
{
    if (requests_ == nullptr)
        return 0;
    unsigned served = 0;
    void *obj;
    /* A few per iteration: operators are slow, gossip is not. */
    while (served < 4 && rte_ring_dequeue(requests_, &obj) == 0) {
        auto *req = static_cast<OperatorRequest *>(obj);
        uint8_t expected = OperatorRequest::pending;
        if (!req->state.compare_exchange_strong(expected, OperatorRequest::running,
                                                std::memory_order_acq_rel)) {
            delete req; /* abandoned: its fn is gone */
            continue;
        }
        (*req->fn)(now);
        stats_.operator_requests.add(); /* before done: the caller may read it next */
        req->state.store(OperatorRequest::done, std::memory_order_release);
        ++served;
    }
    return served;
}

uint64_t ControlLoop::now_us(uint64_t now_tsc) const noexcept
{
    const uint64_t ticks = now_tsc - start_tsc_;
    const uint64_t hz = rte_get_tsc_hz();
    return ticks / hz * 1000000 + ticks % hz * 1000000 / hz;
}

void ControlLoop::apply(const ControlMsg &msg, uint64_t now) noexcept
{
    stats_.msgs.add();
    if (p_.engine == nullptr) {
        apply_locally(msg);
        return;
    }
    if (msg.type == ControlMsgType::claim)
        p_.engine->local_claim(msg.key, now);
    else
        p_.engine->local_refresh(msg.key, now);
}

void ControlLoop::apply_locally(const ControlMsg &msg) noexcept
{
    const uint16_t now = p_.clock->epoch.load(std::memory_order_relaxed);
    const auto existing = p_.table->lookup(msg.key);

    switch (msg.type) {
    case ControlMsgType::claim: {
        /* First claim wins here; a claim for a key already owned (by
         * anybody) leaves the record alone. */
        if (existing) {
            stats_.claims_existing.add();
            return;
        }
        const OwnerRecord rec{.owner = p_.self, .version = 1, .epoch = now};
        switch (p_.table->upsert(msg.key, rec, Presence::absent)) {
        case UpsertResult::inserted:
        case UpsertResult::updated:
            stats_.claims_inserted.add();
            break;
        case UpsertResult::full:
            stats_.table_full.add();
            break;
        case UpsertResult::error:
            stats_.table_errors.add();
            break;
        }
        return;
    }
    case ControlMsgType::refresh: {
        if (!existing || existing->owner != p_.self) {
            stats_.refresh_not_owner.add();
            return;
        }
        OwnerRecord rec = *existing;
        rec.epoch = now;
        if (p_.table->upsert(msg.key, rec, Presence::present) == UpsertResult::updated)
            stats_.refreshes.add();
        else
            stats_.table_errors.add();
        return;
    }
    }
}

void ControlLoop::log_member_changes(const MembershipTable &m, uint64_t now_us) noexcept
{
    const NodeId self = p_.self;
    for (const Member &member : m.members()) {
        if (member.id == self || !member.heard)
            continue;
        LoggedMember &was = logged_[member.id & kMaxNodeId];
        const LoggedMember now{member.state, member.incarnation, member.draining};
        if (now.state == was.state && now.incarnation == was.incarnation &&
            now.draining == was.draining)
            continue;
        const uint64_t silent_ms =
            now_us / 1000 > member.last_heard_ms ? now_us / 1000 - member.last_heard_ms : 0;
        if (p_.log != nullptr) {
            /* Formatted on the stack, cut at the relay's line length:
             * snprintf neither allocates nor throws. */
            char line[LogRelay::kLineMax + 1];
            const int n = std::snprintf(
                line, sizeof(line),
                "flowhome: gossip: node %u %s%s (incarnation %" PRIu32 "%s; last heard %" PRIu64
                " ms ago)",
                unsigned{member.id}, node_state_name(now.state), now.draining ? ", draining" : "",
                now.incarnation,
                was.incarnation != 0 && now.incarnation != was.incarnation ? ", restarted" : "",
                silent_ms);
            if (n > 0)
                p_.log->post(
                    std::string_view(line, std::min(static_cast<size_t>(n), sizeof(line) - 1)));
        }
        was = now;
    }
}

void ControlLoop::publish_membership(uint64_t now_us) noexcept
{
    const uint64_t gen = p_.engine->membership_generation();
    if (gen == published_generation_ || p_.datapath == nullptr)
        return;
    published_generation_ = gen;
    const MembershipTable &m = p_.engine->membership();
    log_member_changes(m, now_us);
    for (const Member &member : m.members())
        p_.datapath->node_state[member.id & kMaxNodeId].store(static_cast<uint8_t>(member.state),
                                                              std::memory_order_relaxed);

    /* A new eligible set for the workers; the old one is freed once every
     * worker has passed a quiescent state (they do so every loop, and are
     * offline while asleep, so this wait is short). Membership changes are
     * rare: a blocking grace period here costs nothing on the packet path. */
    auto view = std::make_unique<ClusterView>();
    view->eligible.assign(m.eligible().begin(), m.eligible().end());
    p_.datapath->view.store(view.get(), std::memory_order_release);
    if (p_.qsbr != nullptr)
        rte_rcu_qsbr_synchronize(p_.qsbr, RTE_QSBR_THRID_INVALID);
    view_ = std::move(view);
}

unsigned ControlLoop::poll_once(uint64_t now_tsc) noexcept
{
    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t now = now_us(now_tsc);
    /* Stored only when it changes (once a second): every store, even of
     * the same value, takes the line from the workers, which read it once
     * a burst, and costs each of them a miss. */
    if (const uint16_t epoch = epoch_of(now);
        epoch != p_.clock->epoch.load(std::memory_order_relaxed))
        p_.clock->epoch.store(epoch, std::memory_order_relaxed);

    unsigned work = 0;
    ControlMsg msgs[kDrainBurst];
    if (p_.from_workers != nullptr) {
        const unsigned n = rte_ring_dequeue_burst_elem(p_.from_workers, msgs, sizeof(ControlMsg),
                                                       kDrainBurst, nullptr);
        for (unsigned i = 0; i < n; ++i)
            apply(msgs[i], now);
        work += n;
    }

    if (p_.engine != nullptr) {
        if (p_.transport != nullptr) {
            work += p_.transport->poll([&](std::span<const std::span<const uint8_t>> frames) {
                p_.engine->receive_burst(frames, now);
            });
            work += p_.transport->report_tick(now);
        }
        p_.engine->tick(now);
        publish_membership(now);
    }
    work += serve_operator_requests(now);

    if (now_tsc >= next_age_tsc_) {
        next_age_tsc_ = now_tsc + hz / kAgeSlicesPerSecond;
        /*
         * With gossip, a live flow of ours that expired is released, not
         * removed: the release tells every node now. Removed silently, it
         * would stay on the others until their copies expired, a timeout
         * after the last re-announcement, and all that while our digest
         * would disagree with theirs and set off a repair sync of all our
         * flows at every digest. The tombstone expires in turn, and is then
         * removed (local_release() takes only live flows of ours). Other
         * nodes' flows are removed, and the engine's digests told.
         */
        ExpiryFn release;
        if (p_.engine != nullptr)
            release = [this, now](const FlowKey &k, OwnerRecord r) {
                return p_.engine->expire(k, r, now);
            };
        const AgeResult r =
            p_.table->age(p_.clock->epoch.load(std::memory_order_relaxed),
                          clamp_timeout(p_.timeouts.tcp_idle_timeout_s),
                          clamp_timeout(p_.timeouts.udp_idle_timeout_s), kAgeBudget, release);
        stats_.aged_out.add(r.expired + r.taken);
        work += r.expired + r.taken;
    }
    return work;
}

uint64_t ControlLoop::idle_sleep_us(uint64_t now_tsc, unsigned idle_sleeps) const noexcept
{
    const uint64_t base = p_.backoff.sleep_us;
    if (base == 0)
        return 0;
    uint64_t us = std::max(
        base, std::min(base << std::min(idle_sleeps, kSleepDoublingsMax), kMaxIdleSleepUs));
    const uint64_t hz = rte_get_tsc_hz();
    us = std::min(us, next_age_tsc_ > now_tsc ? (next_age_tsc_ - now_tsc) * 1'000'000 / hz : 0);
    if (p_.engine != nullptr) {
        const uint64_t now = now_us(now_tsc);
        const uint64_t next = p_.engine->next_tick_us();
        us = std::min(us, next > now ? next - now : 0);
    }
    /* Work that is due (or a deadline nothing moves) still gets the
     * shortest sleep rather than a spin: the kernel's timer slack makes
     * it about 50 us, the default backoff's. */
    return std::max<uint64_t>(us, 1);
}

int ControlLoop::run() noexcept
{
    uint32_t idle = 0;
    unsigned idle_sleeps = 0; /* sleeps in a row that found no work after them */
    while (!p_.stop->load(std::memory_order_relaxed)) {
        const uint64_t now_tsc = rte_rdtsc();
        if (poll_once(now_tsc) != 0) {
            idle = 0;
            idle_sleeps = 0;
            continue;
        }
        const uint64_t sleep_us =
            ++idle >= p_.backoff.idle_polls ? idle_sleep_us(now_tsc, idle_sleeps) : 0;
        if (sleep_us != 0) {
            rte_delay_us_sleep(static_cast<unsigned>(sleep_us));
            idle_sleeps += idle_sleeps < kSleepDoublingsMax ? 1 : 0;
        } else {
            rte_pause();
        }
    }
    /* Peers hear of the stop now, not after dead_after_ms of silence. The
     * node stops its workers after this returns, so a frame handed to
     * worker 0 still leaves. */
    if (p_.engine != nullptr)
        p_.engine->leave(now_us(rte_rdtsc()));
    /* And the switches stop sending it the group. */
    if (p_.transport != nullptr)
        p_.transport->report_leave();
    return 0;
}

} // namespace flowhome
