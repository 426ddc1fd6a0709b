/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * A worker's flow cache: the ownership records its last lookups found, so
 * that the next packets of the same flows skip rte_hash. What the lookup
 * decided for a flow's earlier packet applies to its later ones, for as long
 * as the table has not changed the flow since.
 *
 * Only the lookup is cached. Every packet still takes the decisions that
 * follow it (the owner alive, of this life, the refresh due, its template),
 * so a failover, a drain or a restart takes effect as it does without the
 * cache.
 *
 * An entry holds a key, its record and the table's change stamp of the
 * key's hash (OwnershipTable::stamp()) as read before the lookup that found
 * the record. The table's writer adds one to that stamp after every insert,
 * update and removal of such a key: an entry whose stamp is no longer the
 * table's is stale, and misses. A change the writer has made but not yet
 * stamped may be missed for that long, as a lookup started just before the
 * change would miss it.
 *
 * Direct-mapped: kSlots entries per family, a newer flow evicting an older
 * one. A hit saves the key's share of rte_hash's bulk lookup; a miss costs
 * the probe, a place in the smaller bulk call of the burst's misses and an
 * insert. The two weigh the same where a half to three quarters of the
 * packets hit, by family and table size (docs/performance.md, "Where the
 * flow cache pays"); where flows do not repeat within kSlots packets
 * (millions of flows in even traffic) probing only costs. A window of
 * kWindow probed packets of which fewer than kMinHits in kPer hit sets the
 * cache to rest for the next kRestPackets packets, which go straight to
 * the table; then it probes another window.
 *
 * Threading: one per worker per family, used only on the worker's lcore.
 */
#pragma once

#include <cstdint>
#include <cstring>

#include "flowhome/ownership.hpp"
#include "flowhome/packet.hpp"

namespace flowhome {

template <typename Key> class FlowCache {
public:
    static constexpr uint32_t kSlots = 1024; /* power of two */
    static constexpr uint32_t kWindow = 4096;
    static constexpr uint32_t kMinHits = 2;
    static constexpr uint32_t kPer = 3;
    static constexpr uint32_t kRestPackets = 16 * kWindow;

    explicit FlowCache(bool enabled = true) noexcept : enabled_(enabled)
    {
        /* An empty entry: its hash's low bits are not its slot's, so that no
         * key, whatever its hash, finds it. (kSlots - 1 - i == i has no
         * integer solution.) */
        for (uint32_t i = 0; i < kSlots; ++i) {
            entries_[i] = Entry{};
            entries_[i].hash = kSlots - 1 - i;
        }
    }

    bool enabled() const noexcept { return enabled_; }
    /** Whether the next burst is probed: enabled and not resting. */
    bool probing() const noexcept { return enabled_ && rest_left_ == 0; }

    /**
     * Whether @p k is cached under @p stamp, the table's stamp of @p hash.
     * Sets @p rec to the record its slot holds either way: @p k's current
     * record only when true.
     */
    bool find(const Key &k, uint32_t hash, uint32_t stamp, OwnerRecord &rec) const noexcept
    {
        /* Without a branch: where some flows are held and others are not,
         * whether a packet's is cannot be predicted. (Named first: & on
         * the calls themselves reads as a mistaken &&.) */
        const Entry &e = entries_[hash & (kSlots - 1)];
        rec = e.record;
        const bool same_hash = e.hash == hash;
        const bool current = e.stamp == stamp;
        const bool same = same_key(e.key, k);
        return same_hash & current & same;
    }

    /** Keeps what a lookup found for @p k, with the stamp read before it. */
    void insert(const Key &k, uint32_t hash, uint32_t stamp, OwnerRecord rec) noexcept
    {
        Entry &e = entries_[hash & (kSlots - 1)];
        e.key = k;
        e.record = rec;
        e.hash = hash;
        e.stamp = stamp;
    }

    /** After a probed burst: @p hits of its @p probed packets were cached. */
    void probed(uint32_t hits, uint32_t probed) noexcept
    {
        window_hits_ += hits;
        window_probed_ += probed;
        if (window_probed_ < kWindow)
            return;
        if (window_hits_ * kPer < window_probed_ * kMinHits)
            rest_left_ = kRestPackets;
        window_hits_ = 0;
        window_probed_ = 0;
    }

    /** After a burst of @p n packets looked up while resting. */
    void rested(uint32_t n) noexcept { rest_left_ = n >= rest_left_ ? 0 : rest_left_ - n; }

private:
    struct Entry {
        Key key;
        OwnerRecord record;
        uint32_t hash;
        uint32_t stamp;
    };
    static_assert(sizeof(Key) % sizeof(uint64_t) == 0);

    /* Word by word, without a branch: the keys are 16 or 48 bytes. */
    static bool same_key(const Key &a, const Key &b) noexcept
    {
        uint64_t diff = 0;
        for (size_t i = 0; i < sizeof(Key); i += sizeof(uint64_t)) {
            uint64_t x;
            uint64_t y;
            std::memcpy(&x, reinterpret_cast<const uint8_t *>(&a) + i, sizeof(x));
            std::memcpy(&y, reinterpret_cast<const uint8_t *>(&b) + i, sizeof(y));
            diff |= x ^ y;
        }
        return diff == 0;
    }

    alignas(64) Entry entries_[kSlots];
    bool enabled_;
    uint32_t rest_left_ = 0;
    uint32_t window_hits_ = 0;
    uint32_t window_probed_ = 0;
};

} // namespace flowhome
