/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The ownership table: which node owns each connection.
 *
 * Two DPDK rte_hash tables (IPv4 keys of 16 bytes, IPv6 keys of 48 bytes)
 * created with lock-free reader/writer concurrency
 * (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF). The record is packed into the
 * 8-byte data word of the key slot, so a lookup touches no second cache line.
 *
 * Capacity: a table holds exactly its configured capacity. rte_hash places
 * keys in the next power of two of slots (buckets of 8, cuckoo hashing); a
 * table loaded above kExtendableLoadPercent of those slots, or smaller than
 * kExtendableMinSlots, also gets an extendable bucket table so that a crowded
 * bucket never refuses an insert while free slots remain. Below that load,
 * cuckoo insertion does not fail in practice and the extendable table (19 B
 * per flow at 10M flows) is not created; an insert that fails anyway is an
 * UpsertResult::full, like an insert into a full table.
 *
 * Deleted key slots are reclaimed through RCU QSBR: a slot is reused only
 * after every registered reader has passed a quiescent state. The table keeps
 * its own defer queue of kDeferQueueSize deleted slots (sized to the deletion
 * rate, not to the capacity); a delete that finds it full of slots still in
 * their grace period waits for one grace period (rte_rcu_qsbr_synchronize)
 * and counts it in reclaim_waits(). No deleted slot is ever lost.
 *
 * Threading:
 *  - lookup*() may be called concurrently from any lcore registered with the
 *    table's QSBR variable (workers), without locks;
 *  - upsert(), remove(), age() must be called from a single writer thread
 *    (the control lcore);
 *  - construction and destruction on the main lcore, with no reader online
 *    (the destructor frees the slots still in the defer queue).
 * Errors: the constructor throws std::runtime_error (start-up only); every
 * other function is noexcept and reports through its return value.
 */
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "flowhome/packet.hpp"
#include "flowhome/types.hpp"

struct rte_hash;
struct rte_rcu_qsbr;
struct rte_rcu_qsbr_dq;

namespace flowhome {

namespace owner_flag {
inline constexpr uint8_t pinned = 0x01; /**< operator override: never aged out */
} // namespace owner_flag

/**
 * Who owns a connection, packed into the rte_hash data word.
 * `epoch` is the coarse clock (seconds, wrapping at 2^16) of the last refresh;
 * ages are taken modulo 2^16 (idle_beyond()), so idle timeouts stay below
 * 32768 s.
 */
struct OwnerRecord {
    NodeId owner = kInvalidNode;
    uint16_t version = 0; /**< claim version; orders conflicting claims */
    uint16_t epoch = 0;
    uint8_t flags = 0;
    uint8_t reserved = 0;

    constexpr uint64_t pack() const noexcept
    {
        return uint64_t{owner} | uint64_t{version} << 16 | uint64_t{epoch} << 32 |
               uint64_t{flags} << 48 | uint64_t{reserved} << 56;
    }
    static constexpr OwnerRecord unpack(uint64_t w) noexcept
    {
        return OwnerRecord{static_cast<NodeId>(w), static_cast<uint16_t>(w >> 16),
                           static_cast<uint16_t>(w >> 32), static_cast<uint8_t>(w >> 48),
                           static_cast<uint8_t>(w >> 56)};
    }
    friend constexpr bool operator==(const OwnerRecord &, const OwnerRecord &) = default;
};
static_assert(sizeof(OwnerRecord) == 8, "the record must fit the rte_hash data word");
static_assert(sizeof(void *) == sizeof(uint64_t), "the data word is a pointer");
static_assert(OwnerRecord::unpack(OwnerRecord{7, 9, 11, 1, 0}.pack()) ==
              OwnerRecord{7, 9, 11, 1, 0});
/* The packed word is the struct's own bytes, so the bulk lookup copies its
 * data words out whole. */
static_assert(std::endian::native == std::endian::little);
static_assert(std::bit_cast<OwnerRecord>(OwnerRecord{7, 9, 11, 1, 2}.pack()) ==
              OwnerRecord{7, 9, 11, 1, 2});

/** The most a record's stamp may lie ahead of the clock reading it is aged
 * against: a writer that read the clock just after the ager's tick. */
inline constexpr uint16_t kStampAheadMaxS = 60;

/**
 * Whether a record stamped at @p stamped has been idle longer than
 * @p timeout_s (at most 32767) at @p now, ages taken modulo 2^16: the age
 * must lie between the timeout and the stamps just ahead of @p now, which
 * are fresh. The window is at least 32708 s wide, so a sweep of any length
 * a table allows finds every idle record in it; a signed 16-bit age would
 * see none at a timeout of 32767.
 */
constexpr bool idle_beyond(uint16_t now, uint16_t stamped, uint16_t timeout_s) noexcept
{
    const auto age = static_cast<uint16_t>(now - stamped);
    return age > timeout_s && age <= UINT16_MAX - kStampAheadMaxS;
}
static_assert(idle_beyond(40000, 40000 - 32768, 32767) &&
              !idle_beyond(40000, 40000 - 32767, 32767) && !idle_beyond(100, 101, 1) &&
              !idle_beyond(100, 99, 1) && idle_beyond(100, 98, 1));

/** Largest burst one lookup_bulk call takes (RTE_HASH_LOOKUP_BULK_MAX). */
inline constexpr unsigned kLookupBulkMax = 64;

/** Whether a key is in the table, as its writer's lookup just found it. */
enum class Presence : uint8_t {
    unknown, /**< not looked up: upsert() looks */
    absent,
    present,
};

enum class UpsertResult : uint8_t {
    inserted,
    updated,
    full,  /**< no free slot: counted refusal, the table is unchanged */
    error, /**< rte_hash refused for another reason (bad parameters) */
};

/**
 * Offered each expired entry, with its record, before age() removes it;
 * true when it took the entry over instead (the gossip engine turns a flow
 * this node owns into a release, so that every node drops it now rather
 * than a timeout later, and accounts for the others it lets go).
 */
using ExpiryFn = std::function<bool(const FlowKey &, OwnerRecord)>;

struct AgeResult {
    uint32_t examined = 0; /**< entries looked at */
    uint32_t expired = 0;  /**< entries removed */
    uint32_t taken = 0;    /**< expired entries the ExpiryFn took over (not removed) */
    uint64_t scanned = 0;  /**< table positions walked over, empty ones included */
};

class OwnershipTable {
public:
    /** Deleted slots that may wait for their grace period at once (both
     * families); a ring of 2^14 entries of 16 bytes. */
    static constexpr uint32_t kDeferQueueSize = (1u << 14) - 1;
    /** Load (capacity / slots) above which the extendable bucket table is
     * created. */
    static constexpr uint32_t kExtendableLoadPercent = 80;
    /** Tables with fewer slots always get the extendable bucket table. */
    static constexpr uint32_t kExtendableMinSlots = 1u << 16;

    struct Params {
        std::string name = "flowhome";
        uint32_t capacity_ipv4 = 1u << 20;
        uint32_t capacity_ipv6 = 1u << 16;
        int socket_id = -1;           /**< SOCKET_ID_ANY */
        rte_rcu_qsbr *qsbr = nullptr; /**< readers' QSBR variable; required */
    };

    explicit OwnershipTable(const Params &params);
    /** An upper bound of the memory a table of these capacities takes on
     * its socket (rte_hash's buckets, key slots and rings, with allocator
     * overhead), to size a heap of its own. */
    static size_t memory_bound(uint32_t capacity_ipv4, uint32_t capacity_ipv6) noexcept;
    /** An upper bound of what it takes from the EAL heap wherever the rest
     * is: the defer queue, and 4 B per entry of rte_hash's with the
     * extendable bucket table (allocated without regard to the socket). */
    static size_t eal_memory_bound(uint32_t capacity_ipv4, uint32_t capacity_ipv6) noexcept;
    ~OwnershipTable();
    OwnershipTable(const OwnershipTable &) = delete;
    OwnershipTable &operator=(const OwnershipTable &) = delete;

    /* ---- readers (any registered lcore) ---- */

    /**
     * Bulk lookup of up to kLookupBulkMax keys of one family with their
     * precomputed flow_hash() values. Bit i of the returned mask is set when
     * keys[i] is present; records[i] is then valid.
     */
    uint64_t lookup_bulk4(const FlowKey4 *const *keys, const uint32_t *hashes, unsigned n,
                          OwnerRecord *records) const noexcept;
    uint64_t lookup_bulk6(const FlowKey6 *const *keys, const uint32_t *hashes, unsigned n,
                          OwnerRecord *records) const noexcept;
    /** lookup_bulk4() or lookup_bulk6(), by the keys' type. */
    uint64_t lookup_bulk(const FlowKey4 *const *keys, const uint32_t *hashes, unsigned n,
                         OwnerRecord *records) const noexcept
    {
        return lookup_bulk4(keys, hashes, n, records);
    }
    uint64_t lookup_bulk(const FlowKey6 *const *keys, const uint32_t *hashes, unsigned n,
                         OwnerRecord *records) const noexcept
    {
        return lookup_bulk6(keys, hashes, n, records);
    }
    std::optional<OwnerRecord> lookup(const FlowKey &key) const noexcept;

    /**
     * The change stamp of the keys whose flow_hash() is @p hash (and of
     * every other key whose hash has the same low kStampBits bits): the
     * writer adds one after each insert, update and removal of such a key,
     * once the table holds the change. A reader that reads it before a
     * lookup may keep what the lookup found for as long as the stamp stays
     * the same (a worker's FlowCache). Acquire: a lookup after it sees
     * every change it counts.
     */
    uint32_t stamp(uint32_t hash) const noexcept
    {
        return stamps_[hash & (kStampSlots - 1)].load(std::memory_order_acquire);
    }
    static constexpr unsigned kStampBits = 16;
    static constexpr uint32_t kStampSlots = 1u << kStampBits;

    /* ---- the single writer (control lcore) ---- */

    /**
     * Inserts or replaces the record of @p key. When no slot is free, first
     * reclaims the deleted slots whose grace period has passed. @p presence:
     * whether the writer found @p key when it read it (lookup() or a walk),
     * the key not written or removed since; upsert() then does not look
     * again. A wrong hint miscounts the live flows.
     */
    UpsertResult upsert(const FlowKey &key, OwnerRecord record,
                        Presence presence = Presence::unknown) noexcept;
    /**
     * Removes @p key; false when absent. The slot is reused after a grace
     * period. When kDeferQueueSize deleted slots are all still within their
     * grace period, blocks until the readers pass a quiescent state (counted
     * in reclaim_waits()); the caller must not be an online reader.
     */
    bool remove(const FlowKey &key) noexcept;
    /**
     * Inserts and removes so far (updates in place excepted): either may
     * move other entries between table positions (cuckoo moves; an
     * extendable bucket compacted), under a walk that spans several calls.
     */
    uint64_t mutations() const noexcept { return mutations_; }
    /**
     * Examines up to @p budget entries, continuing where the previous call
     * stopped, and removes those not refreshed for their protocol's timeout
     * (pinned entries excepted; one stamped ahead of @p now is fresh),
     * unless @p on_expiry takes them over. A full
     * pass over both tables takes (count / budget) calls. Removes like
     * remove(), so it may wait for a grace period too. @p on_expiry runs
     * after each step of the walk, between iterations: it may update
     * entries (upsert of an existing key), not add or remove any.
     *
     * A pass over a table starts at most once per second of @p now. Finding
     * the next entry walks over every empty position before it (inside
     * rte_hash_iterate, which takes no limit), so a call on a sparse table
     * walks to its end: without the limit, a slice every few milliseconds
     * would sweep a nearly empty table of millions of positions each time.
     */
    AgeResult age(uint16_t now, uint16_t tcp_timeout_s, uint16_t udp_timeout_s, uint32_t budget,
                  const ExpiryFn &on_expiry = {}) noexcept;

    /**
     * The entry at or after @p cursor in @p f's table (start at 0); advances
     * @p cursor past it. False at the end, and for any cursor past it (a
     * forged cursor reads nothing outside the table). Writer thread only (or
     * with writers stopped).
     */
    bool next(Family f, uint32_t &cursor, FlowKey &key, OwnerRecord &rec) const noexcept;
    /** A place in a walk over both tables, IPv4 then IPv6. */
    struct Walk {
        Family family = Family::ipv4;
        uint32_t position = 0; /**< next()'s cursor in family's table */
        bool ended = false;
    };
    /** The walk's next entry, as next() above, the IPv6 table after the
     *  IPv4 one; false once both are walked, and @p w ended. */
    bool next(Walk &w, FlowKey &key, OwnerRecord &rec) const noexcept;
    /**
     * Calls @p fn(const FlowKey &, OwnerRecord) for every entry, IPv4 then
     * IPv6; a @p fn that returns bool stops the walk by returning false.
     * Returns how many entries were visited. Thread: as next().
     */
    template <typename Fn> uint32_t for_each(Fn &&fn) const;

    /** Live entries; deleted ones awaiting their grace period do not count. */
    uint32_t count(Family f) const noexcept;
    /**
     * Whether @p f's table is refusing new flows: an insert found no free
     * slot in the whole table (not merely its key's two buckets full, which
     * keys crafted to collide can make happen in an empty table: that is a
     * refusal of the one key) while its live flows left less than one in
     * kReopenShare of its capacity (at least one slot) free (slots waiting
     * for their grace period after removals are free moments later: a
     * claim that finds them waiting is refused alone), and it has not since
     * had that room free of flows again. A worker
     * meeting a connection's opening packet asks, so as not to serve a
     * connection whose claim could not be recorded. Any thread: a relaxed
     * read of a line that the writer stores to only when the answer changes.
     */
    bool refusing(Family f) const noexcept
    {
        return refusing_of(f).load(std::memory_order_relaxed);
    }
    /** See refusing(): the room a full table makes before it takes new
     * flows again, so that the opening packets that follow find a slot
     * each, not one between them. */
    static constexpr uint32_t kReopenShare = 1024;
    uint32_t capacity(Family f) const noexcept;
    /** Whether the family's table has an extendable bucket table. */
    bool extendable(Family f) const noexcept;
    /** Deletes that waited for a grace period because the defer queue was
     * full; counted when the wait starts. Any thread may read it. */
    uint64_t reclaim_waits() const noexcept
    {
        return reclaim_waits_.load(std::memory_order_relaxed);
    }

    rte_hash *hash4() const noexcept { return h4_; }
    rte_hash *hash6() const noexcept { return h6_; }

private:
    rte_hash *h4_ = nullptr;
    rte_hash *h6_ = nullptr;
    rte_rcu_qsbr *qsbr_ = nullptr;
    rte_rcu_qsbr_dq *dq_ = nullptr;
    uint32_t deferred_ = 0; /**< slots in dq_; writer only */
    std::atomic<uint64_t> reclaim_waits_{0};
    uint32_t cap4_ = 0;
    uint32_t cap6_ = 0;
    uint64_t mutations_ = 0; /* writer only */
    /* stamp(): 256 kB, read by the workers, written by the writer alone. */
    std::unique_ptr<std::atomic<uint32_t>[]> stamps_;
    void bump_stamp(uint32_t hash) noexcept
    {
        std::atomic<uint32_t> &s = stamps_[hash & (kStampSlots - 1)];
        s.store(s.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    /* rte_hash_count() in lock-free mode still counts slots waiting in the
     * RCU defer queue; the writer keeps the live counts itself. */
    std::atomic<uint32_t> live4_{0};
    std::atomic<uint32_t> live6_{0};
    /* refusing(), per family: on a line of its own, which workers read. */
    struct alignas(64) Refusing {
        std::atomic<bool> v4{false};
        std::atomic<bool> v6{false};
    } refusing_;
    uint32_t age_cursor4_ = 0;
    uint32_t age_cursor6_ = 0;
    bool age_v6_turn_ = false;
    /* The second (age()'s now) each table's last pass started in; kNoPass
     * before the first. */
    static constexpr uint32_t kNoPass = UINT32_MAX;
    uint32_t age_pass4_ = kNoPass;
    uint32_t age_pass6_ = kNoPass;

    /* Callers have checked that f is ipv4 or ipv6. */
    rte_hash *hash_of(Family f) const noexcept { return f == Family::ipv6 ? h6_ : h4_; }
    /** Whether @p live flows leave one in kReopenShare of @p f's slots free. */
    bool has_reopen_room(Family f, uint32_t live) const noexcept;
    std::atomic<uint32_t> &live_of(Family f) noexcept
    {
        return f == Family::ipv6 ? live6_ : live4_;
    }
    std::atomic<bool> &refusing_of(Family f) noexcept
    {
        return f == Family::ipv6 ? refusing_.v6 : refusing_.v4;
    }
    const std::atomic<bool> &refusing_of(Family f) const noexcept
    {
        return f == Family::ipv6 ? refusing_.v6 : refusing_.v4;
    }
    const std::atomic<uint32_t> &live_of(Family f) const noexcept
    {
        return f == Family::ipv6 ? live6_ : live4_;
    }
    void defer_free(Family f, int32_t position) noexcept;
    uint32_t reclaim(uint32_t max) noexcept;
    static void free_deferred(void *table, void *entries, unsigned n) noexcept;
};

template <typename Fn> uint32_t OwnershipTable::for_each(Fn &&fn) const
{
    uint32_t visited = 0;
    FlowKey key;
    OwnerRecord rec;
    Walk w;
    while (next(w, key, rec)) {
        ++visited;
        if constexpr (std::is_same_v<std::invoke_result_t<Fn &, const FlowKey &, OwnerRecord>,
                                     bool>) {
            if (!fn(key, rec))
                return visited;
        } else {
            fn(key, rec);
        }
    }
    return visited;
}

} // namespace flowhome
