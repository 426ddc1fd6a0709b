/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The worker: a run-to-completion poll loop on one lcore, one RX and one TX
 * queue per port.
 *
 * Per burst from the wire port: parse → classify (redirected from a peer:
 * decapsulate and continue with the inner packet; VIP traffic; anything else
 * passes to the local port unchanged) → hash every VIP key and look the burst
 * up in the worker's flow cache, then what it does not hold in the ownership
 * table in bulk → decide (owner is self: local; owner is
 * a peer: encapsulate with its template; no record and a connection-opening
 * packet: claim it and serve it locally; no record mid-connection: the miss
 * policy) → TX bursts. Everything the local port sends passes to the wire
 * unchanged.
 *
 * Threading: one Worker per worker lcore; process_*() and run() only on that
 * lcore. Stats readable from anywhere. No locks, syscalls, allocation,
 * exceptions or logging per packet: everything here is noexcept; the only
 * syscall of its own is the idle sleep, taken offline from RCU. (A port's
 * driver may make its own: net_tap writes and reads a packet per system
 * call; docs/operations.md.)
 */
#pragma once

#include <atomic>
#include <cstdint>

#include <rte_mbuf.h>

#include "flowhome/config.hpp"
#include "flowhome/control.hpp"
#include "flowhome/drop_reason.hpp"
#include "flowhome/encap.hpp"
#include "flowhome/flow_cache.hpp"
#include "flowhome/gossip_transport.hpp"
#include "flowhome/gossip_wire.hpp"
#include "flowhome/ownership.hpp"
#include "flowhome/placement.hpp"
#include "flowhome/stats.hpp"
#include "flowhome/template_set.hpp"
#include "flowhome/vip.hpp"

struct rte_ring;
struct rte_rcu_qsbr;

namespace flowhome {

struct CaptureTap;

/*
 * Packets a worker asks each port for, and looks up in one bulk call:
 * rte_hash's largest bulk (RTE_HASH_LOOKUP_BULK_MAX). The lookup prefetches
 * the buckets of every key of the burst, then the key slots of every hit,
 * so a table too large for the cache costs two rounds of misses per burst;
 * 64 keys share each round where 32 did (docs/performance.md: 15-19 % more
 * packets per second at 1M and 10M flows). A port that has fewer packets
 * waiting returns fewer: the burst never waits to fill.
 */
inline constexpr uint16_t kBurst = 64;
/** Longest idle sleep of worker 0 while it sends the control lcore's gossip. */
inline constexpr uint32_t kGossipSenderMaxSleepUs = 1000;
inline constexpr uint16_t kNoPort = 0xFFFF;

/** What every worker reads; owned by the node, outlives the workers. */
struct DatapathShared {
    NodeId self = kInvalidNode;
    std::atomic<MissPolicy> miss_policy{MissPolicy::drop}; /**< the console may change it */
    uint8_t max_hops = 1;
    uint16_t refresh_after_s = 30; /**< restamp an owned record this old */
    uint64_t claim_grace_tsc = 0;  /**< pending claims count as owned this long */
    BackoffConfig backoff;
    DecapConfig decap;
    uint16_t wire_port = kNoPort;
    uint16_t local_port = kNoPort;
    /** Serve every VIP packet locally, without ownership (a comparison setting). */
    bool bypass_ownership = false;
    /** Each worker keeps its last lookups' records (FlowCache); read when
     *  a Worker is built. */
    bool flow_cache = true;

    const VipSet *vips = nullptr;
    const OwnershipTable *table = nullptr;
    const PeerDirectory *peers = nullptr;
    std::atomic<const TemplateSet *> templates{nullptr};
    std::atomic<const ClusterView *> view{nullptr};
    rte_ring *to_control = nullptr;
    rte_rcu_qsbr *qsbr = nullptr;
    SharedClock *clock = nullptr;
    std::atomic<bool> stop{false};

    /* Gossip: frames the workers hand to the control lcore (software
     * hand-off, when rte_flow does not steer them to its own queue). */
    GossipMatch gossip;
    rte_ring *gossip_handoff = nullptr;
    /* Frames the control lcore wants sent when the wire port has no TX
     * queue for it: worker 0 sends them with its own. */
    rte_ring *gossip_tx = nullptr;
    /* Published by the control lcore: each node's membership state
     * (NodeState), read per packet to route a dead owner's flows to their
     * failover owner before the table is rewritten. */
    std::atomic<uint8_t> node_state[kMaxNodeId + 1] = {};
    /* Published by the gossip engine: each node's life tag (a count of its
     * deaths and restarts seen here; OwnerRecord::reserved), stored before
     * any record carrying it. A record of an earlier life belongs to its
     * failover owner, as the background rewrite will make it. */
    std::atomic<uint8_t> node_life[kMaxNodeId + 1] = {};
    /* This node is draining: it serves what it owns and sends connection-
     * opening packets to the node rendezvous hashing names among the others. */
    std::atomic<bool> draining{false};
    /* The console's packet capture (capture.hpp), or null: loaded once per
     * poll; freed only after an RCU grace period. */
    std::atomic<CaptureTap *> capture{nullptr};
};

struct alignas(64) WorkerStats {
    Counter rx_wire;
    Counter rx_local;
    Counter tx_wire;
    Counter tx_local;
    Counter local_hits;   /**< owned by this node, delivered locally */
    Counter claims;       /**< connection-opening packets claimed */
    Counter pending_hits; /**< sent where the pending-claims cache says the opening packet went */
    Counter redirects;    /**< encapsulated toward the owner */
    Counter decapsulated; /**< received encapsulated from a peer */
    Counter ecn_suspect;  /**< decapsulated with ECN fields RFC 6040 calls suspect (forwarded) */
    Counter passthrough;  /**< non-VIP wire traffic handed to the local port */
    Counter from_local;   /**< local port traffic passed to the wire */
    Counter miss_local;   /**< misses served locally by policy */
    Counter miss_hash;    /**< misses redirected by rendezvous hashing */
    Counter claim_ring_full; /**< claims the control ring refused (served anyway) */
    Counter claim_retries;   /**< refused claims sent again with their flow's next packet */
    Counter refreshes;
    Counter refresh_ring_full;
    Counter icmp_too_big;      /**< ICMP / ICMPv6 "too big" errors sent */
    Counter icmp_rate_limited; /**< "too big" errors not sent: over the worker's rate */
    Counter icmp_to_owner;     /**< ICMP errors about a peer's flow, sent on to it */
    Counter gossip_handoff;    /**< gossip frames handed to the control lcore */
    Counter flow_cache_hits;   /**< VIP packets whose record the flow cache held */
    Counter flow_cache_misses; /**< VIP packets the flow cache was asked for and looked up */
    Counter flow_cache_rested; /**< VIP packets looked up while the flow cache rested */
    Counter failover;          /**< packets of a dead owner's flows sent to its failover owner */
    Counter drain_redirects;   /**< opening packets a draining node sent to another node */
    Counter
        opening_table_full; /**< opening packets met with a full table: no claim (miss policy) */
    Counter idle_sleeps;
    Counter busy_cycles; /**< TSC cycles of polls that found work, each to the next's start */
    Counter busy_polls;  /**< polls that found work: packets over them, the mean burst */
    Counter drops[kDropReasonCount];
    Counter redirects_to[kMaxNodeId + 1];

    uint64_t total_drops() const noexcept;
};

/** Packets a burst produced for one port, sent by flush(). */
struct TxBatch {
    uint16_t port = kNoPort;
    uint16_t n = 0;
    /* A wire burst, a local burst, and room for gossip frames. */
    rte_mbuf *pkts[3 * kBurst];
};

class Worker {
public:
    Worker(DatapathShared &shared, unsigned index, uint16_t queue) noexcept;

    /** The poll loop; returns when shared.stop is set. Registers with RCU. */
    int run() noexcept;

    /**
     * One iteration of the loop without the RCU and back-off bookkeeping:
     * receive a burst from each port, process, transmit. Returns packets
     * received plus gossip frames taken to send (worker 0).
     */
    uint16_t poll_once() noexcept;

    /** Processes a burst received on the wire port; outputs go to the batches.
     * A burst longer than kBurst is taken kBurst at a time, the batches
     * flushed in between. */
    void process_wire_burst(rte_mbuf **pkts, uint16_t n) noexcept;
    /** Processes a burst received on the local port (all of it goes to the wire). */
    void process_local_burst(rte_mbuf **pkts, uint16_t n) noexcept;
    /** Sends the batches; what a full queue refuses is freed and counted. */
    void flush() noexcept;

    TxBatch &wire_out() noexcept { return wire_out_; }
    TxBatch &local_out() noexcept { return local_out_; }
    const WorkerStats &stats() const noexcept { return stats_; }
    const FlowCache<FlowKey4> &flow_cache4() const noexcept { return cache4_; }
    unsigned index() const noexcept { return index_; }

private:
    /* Worker 0, where the control lcore has no TX queue: its frames into the
     * wire batch. Returns how many. */
    uint16_t take_gossip_tx() noexcept;

    /* One packet of the burst on its way through the pipeline. */
    struct Slot {
        rte_mbuf *m;
        ParsedPacket p;
        FlowKey key;
        uint32_t hash;
        uint8_t hops;   /* redirects already taken */
        NodeId ingress; /* node that received it from the router */
    };
    /* Where a connection's opening packet went, until the claim is in the
     * table: this node for its own claim, the node it picked while
     * draining. Its next packets (the handshake's ACK) arrive first. */
    struct PendingClaim {
        uint64_t expires_tsc = 0; /* 0: never used (expired at any time) */
        uint32_t hash = 0;
        NodeId owner = kInvalidNode;
        bool refused = false; /* our claim of it: the control ring was full */
        FlowKey key;
    };
    static constexpr unsigned kPendingSlots = 1024; /* power of two */

    /* Refreshes sent this second, by flow hash: a flow stays due until the
     * control lcore has restamped it, and each of its packets would send
     * one more. Direct-mapped; a collision costs a flow one refresh a
     * second later, while it is still due. */
    struct RefreshSent {
        uint32_t hash;
        uint16_t epoch;
    };
    static constexpr unsigned kRefreshSlots = 1024; /* power of two */
    bool refresh_sent(uint32_t hash, uint16_t epoch) noexcept;
    /** Sends an ICMP error about a peer's flow on to the peer; false if it is none. */
    bool icmp_to_owner(Slot &s, const uint8_t *frame) noexcept;
    /** Who owns a record's flow now: its owner, or its failover owner when
     * the owner is gone (counted); kInvalidNode when there is none. */
    NodeId current_owner(OwnerRecord rec, uint32_t hash) noexcept;

    /* RFC 4443 2.4(f), RFC 1812 4.3.2.8: "too big" errors are rate-limited,
     * per worker, by a token bucket: kIcmpPerSecond, bursts of kIcmpBurst. */
    static constexpr uint64_t kIcmpPerSecond = 1000;
    static constexpr uint64_t kIcmpBurst = 64;
    bool icmp_token_ready() noexcept;

    /** Looks up a burst's keys of one family: in @p cache first, where it
     *  probes, then in the table; fills @p cache with what the table found.
     *  Returns the keys found, by bit; only their records in @p rec mean
     *  anything. */
    template <typename Key>
    uint64_t look_up(FlowCache<Key> &cache, const Key *const *keys, const uint32_t *hashes,
                     unsigned n, OwnerRecord *rec) noexcept;
    void decide_burst(const uint8_t *slot_of, unsigned n, uint64_t hits, const OwnerRecord *rec,
                      uint64_t now_tsc, uint16_t epoch) noexcept;
    void decide(Slot &s, bool hit, OwnerRecord rec, uint64_t now_tsc, uint16_t epoch) noexcept;
    void redirect(Slot &s, NodeId owner) noexcept;
    void to_local(rte_mbuf *m) noexcept;
    void to_wire(rte_mbuf *m) noexcept;
    /** Counts a drop and offers it to a drop capture, filed under @p port; the caller frees it. */
    void count_drop(const rte_mbuf *m, DropReason r, uint16_t port) noexcept;
    void drop(rte_mbuf *m, DropReason r) noexcept;
    /** The pending claim of @p k not expired at @p now_tsc, or nullptr. */
    PendingClaim *pending_find(const FlowKey &k, uint32_t hash, uint64_t now_tsc) noexcept;
    void pending_insert(const FlowKey &k, uint32_t hash, uint64_t now_tsc, NodeId owner) noexcept;
    void send_control(ControlMsgType type, const FlowKey &k) noexcept;
    NodeId eligible_pick(uint32_t hash) const noexcept;
    void flush_control() noexcept;
    void flush_gossip() noexcept;
    /** A frame that came in several mbufs: handed over with the burst's
     *  gossip if it is gossip (the control lcore reads it whole), else
     *  dropped (rx_chained): no port sends it. */
    void take_chained(rte_mbuf *m) noexcept;
    void send_batch(TxBatch &b, Counter &tx, DropReason full) noexcept;

    DatapathShared &sh_;
    unsigned index_;
    uint16_t queue_;
    TxBatch wire_out_;
    TxBatch local_out_;
    ControlMsg control_out_[kBurst];
    uint16_t control_n_ = 0;
    rte_mbuf *gossip_in_[kBurst]; /* this burst's gossip frames, for the hand-off ring */
    uint16_t gossip_n_ = 0;
    WorkerStats stats_;
    CaptureTap *tap_ = nullptr; /* this poll's capture, if any */
    PendingClaim pending_[kPendingSlots];
    uint64_t icmp_tokens_ = kIcmpBurst;
    uint64_t icmp_refill_tsc_ = 0;
    RefreshSent refreshed_[kRefreshSlots] = {};
    /* The burst in flight and its lookup results: members, so that nothing
     * is constructed per burst. */
    Slot slots_[kBurst];
    OwnerRecord rec4_[kBurst];
    OwnerRecord rec6_[kBurst];
    OwnerRecord miss_rec_[kBurst]; /* what the table found of the flows the cache did not hold */
    FlowCache<FlowKey4> cache4_;
    FlowCache<FlowKey6> cache6_;
};

} // namespace flowhome
