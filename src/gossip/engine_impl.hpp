/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipEngine internals, shared by engine.cpp (core, receive, apply),
 * engine_tx.cpp (batching, heartbeats, re-announce, digests) and
 * engine_sync.cpp (sync, failover). Control lcore only; every buffer is
 * allocated in the constructor so the receive path does not allocate.
 */
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "flowhome/gossip_engine.hpp"

namespace flowhome {

/* Most store entries one tick visits for one background job (failover
 * rewrite, re-announce walk): bounds the control lcore's pause. */
inline constexpr uint32_t kSliceBudget = 4096;
/* Smallest re-announce slice, so small tables finish a pass quickly. */
inline constexpr uint32_t kSliceMin = 64;
/* Background jobs advance at most once per this many microseconds. */
inline constexpr uint64_t kSlicePeriodUs = 1000;
/* Most entries one sync answer visits (a filtered walk may skip many). */
inline constexpr uint32_t kSyncAnswerBudget = 8192;
/* Consecutive mismatched digests of one owner before we ask it for a sync:
 * one mismatch is usually a frame still in flight or reordered. */
inline constexpr uint8_t kDigestMismatchStreak = 2;

/** One pull of a peer's table (start-up full sync, or a digest repair). */
struct SyncSession {
    bool active = false;
    NodeId target = kInvalidNode;
    NodeId owner_filter = kInvalidNode;
    uint32_t request_id = 0;
    uint64_t cursor = 0;
    uint64_t sent_us = 0;
    uint8_t attempts = 0; /* requests sent for the current cursor */
};
/* Requests for one cursor before a full sync turns to another peer. */
inline constexpr uint8_t kSyncAttempts = 3;

struct GossipEngine::Impl {
    Impl(const GossipParams &params, const KeyRing &keys, FlowStore &store, SendFn send,
         uint64_t now_us);

    /* ---- engine.cpp: store writes, apply, receive ---- */
    UpsertResult put(const FlowKey &key, const std::optional<OwnerRecord> &old,
                     OwnerRecord rec) noexcept;
    void apply_remote(const Claim &c, uint64_t now_us) noexcept;
    void apply_sync_entry(const FlowEntry &e, uint64_t now_us) noexcept;
    void receive(std::span<const uint8_t> frame, uint64_t now_us) noexcept;
    void on_heartbeat(const HeartbeatRecord &hb, uint64_t now_us) noexcept;
    void on_digest(NodeId sender, const DigestRecord &d, uint64_t now_us) noexcept;
    void local_claim(const FlowKey &key, uint64_t now_us) noexcept;
    void local_release(const FlowKey &key, uint64_t now_us) noexcept;
    void local_refresh(const FlowKey &key, uint64_t now_us) noexcept;
    uint16_t operator_claim(const FlowKey &key, uint64_t now_us) noexcept;
    bool is_live_own(const OwnerRecord &r) const noexcept;

    /* ---- engine_tx.cpp: frames, heartbeat, re-announce ---- */
    void begin_frame() noexcept;
    void send_frame() noexcept;
    /* Adds one record to the batch: opens a frame if none is open, sends
     * the frame first when the record does not fit. The batch deadline
     * starts with the frame's first record. */
    template <typename Add> void append(uint64_t now_us, Add &&add) noexcept
    {
        if (!frame_open)
            begin_frame();
        const bool was_empty = writer.empty();
        if (add(writer)) {
            if (was_empty)
                batch_deadline_us = now_us + p.batch_interval_us;
            return;
        }
        send_frame();
        begin_frame();
        /* A fresh frame holds any single record (the constructor checked
         * max_frame). */
        if (add(writer))
            batch_deadline_us = now_us + p.batch_interval_us;
    }
    void queue_flow(RecordType type, const FlowEntry &e, uint64_t now_us) noexcept;
    void flush(uint64_t now_us) noexcept;
    void send_heartbeat(uint64_t now_us) noexcept;
    void send_own_digest(uint64_t now_us) noexcept;
    void reannounce_slice(uint64_t now_us) noexcept;
    void finish_reannounce_pass(uint64_t now_us) noexcept;
    void tick(uint64_t now_us) noexcept;
    uint64_t next_tick_us() const noexcept;

    /* ---- engine_sync.cpp: sync and failover ---- */
    void start_failover(NodeId node) noexcept;
    void failover_slice(uint64_t now_us) noexcept;
    void on_member_change(const MemberChange &c, uint64_t now_us) noexcept;
    void sync_tick(uint64_t now_us) noexcept;
    void send_sync_request(SyncSession &s, uint64_t now_us) noexcept;
    bool start_full_sync(uint64_t now_us) noexcept;
    void request_repair(NodeId owner, uint64_t now_us) noexcept;
    void answer_sync(const SyncRequestRecord &r, NodeId requester, uint64_t now_us) noexcept;
    void on_sync_response(const SyncResponseRecord &r, uint64_t now_us) noexcept;
    void refute(uint32_t seen_incarnation, uint64_t now_us) noexcept;

    GossipParams p;
    FlowStore &store;
    SendFn send;
    Authenticator auth;
    FrameVerifier verifier;
    MembershipTable members;
    GossipStats stats;

    /* Receive: one reader, one record, reused. */
    FrameReader reader;
    GossipRecord rec;

    /* Transmit: one frame under construction (the batch). */
    std::vector<uint8_t> tx_buf;
    FrameWriter writer;
    bool frame_open = false;
    uint64_t batch_deadline_us = 0; /* valid while the batch holds records */
    uint64_t sequence = 0;

    /* Heartbeat. */
    std::vector<MemberView> views;
    size_t view_offset = 0; /* rotates when not every view fits a frame */
    uint64_t next_heartbeat_us = 0;

    /* Per node id (kMaxNodeId + 1 entries). */
    std::vector<OwnerDigest> digests; /* incremental, from every write the engine makes */
    std::vector<OwnerDigest> fresh;   /* recomputed by the current re-announce pass */
    std::vector<uint32_t> touched;    /* pass id of the last write to the owner's digest */
    std::vector<uint8_t> mismatch_streak;
    std::vector<uint64_t> last_repair_us;
    std::vector<uint8_t> life;         /* owner life tag (OwnerRecord::reserved) */
    std::vector<uint8_t> failing;      /* 1: records of an earlier life move away */
    std::vector<uint32_t> restart_inc; /* incarnation whose restart we failed over */

    /* Re-announce walk. */
    bool pass_running = false;
    uint32_t pass_id = 1;
    uint64_t pass_cursor = 0;
    uint64_t pass_start_us = 0;
    uint64_t next_pass_us = 0;
    uint32_t pass_budget = kSliceMin;
    uint64_t next_slice_us = 0;

    /* Failover rewrite. */
    bool failover_running = false;
    uint64_t failover_cursor = 0;
    uint32_t failover_requests = 0;   /* bumped by start_failover */
    uint32_t failover_pass_start = 0; /* failover_requests when the pass began */
    uint64_t next_failover_us = 0;

    /* Scratch for slices: filled by FlowStore::scan, applied afterwards. */
    std::vector<std::pair<FlowKey, OwnerRecord>> scratch;

    /* Sync. */
    SyncSession full;
    SyncSession repair;
    bool synced = false;
    uint32_t next_request_id = 1;
    NodeId last_sync_target = kInvalidNode;
};

} // namespace flowhome
