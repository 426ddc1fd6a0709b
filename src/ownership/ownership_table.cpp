/* SPDX-License-Identifier: BSD-3-Clause */
/* The RCU defer queue (rte_rcu_qsbr_dq_*) is still experimental in DPDK 22.11;
 * this file only. Must precede every DPDK header. */
#define ALLOW_EXPERIMENTAL_API 1

#include "flowhome/ownership.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_rcu_qsbr.h>

namespace flowhome {
namespace {

/* rte_hash refuses tables below 8 entries (one bucket). */
constexpr uint32_t kMinEntries = 8;

/* Whether a table of @p entries needs the extendable bucket table.
 * rte_hash puts the keys in rte_align32pow2(entries) slots, buckets of 8,
 * each key in one of two buckets with cuckoo moves (breadth-first, up to
 * RTE_HASH_BFS_QUEUE_MAX_LEN nodes). Filling tables of 2^10 to 2^24 slots
 * with random keys until the first refused insert (DPDK 22.11, CRC32-C), the
 * first refusal came at 96.5% to 98.5% of the slots; tables of 2^6 and 2^8
 * slots went down to 94% and 96.5%, two-bucket tables (2^4) to 75%, because
 * a key's two buckets there are often the same one. Up to 80% of the slots,
 * at least 16 points below every refusal measured on tables of 2^16 slots or
 * more, the extendable table buys nothing; it costs a 64-byte bucket per 8
 * slots, 4 bytes per slot and a ring (19 B per flow at 10M flows). Below
 * 2^16 slots it costs under 1 MB, so small tables keep it whatever their
 * load. */
bool needs_extendable_buckets(uint32_t entries) noexcept
{
    const uint64_t slots = rte_align32pow2(entries);
    return slots < OwnershipTable::kExtendableMinSlots ||
           uint64_t{entries} * 100 > slots * OwnershipTable::kExtendableLoadPercent;
}

/* The entries rte_hash is created with for a capacity. */
uint32_t hash_entries(uint32_t capacity) noexcept
{
    return std::max(capacity, kMinEntries);
}

/* What rte_hash_create (DPDK 22.11) allocates on the table's socket for
 * @p entries keys of @p key_len bytes, rounded up: the buckets (64 B per 8
 * slots, twice with the extendable table), key slots (the data word and the
 * key, aligned to 16 B, one more than the entries), the ring of free slots
 * (4 B each, a power of two above the slots), and with the extendable table
 * its ring of free buckets. */
size_t hash_bytes(uint32_t entries, uint32_t key_len) noexcept
{
    const size_t slots = rte_align32pow2(entries);
    const bool ext = needs_extendable_buckets(entries);
    const size_t buckets = slots / 8 * 64 * (ext ? 2 : 1);
    const size_t key_slots = size_t{RTE_ALIGN(sizeof(uint64_t) + key_len, 16)} * (entries + 1);
    const size_t free_ring = size_t{4} * rte_align64pow2(uint64_t{entries} + 1);
    const size_t ext_ring = ext ? size_t{4} * rte_align32pow2(slots / 8 + 1) : 0;
    return buckets + key_slots + free_ring + ext_ring;
}

/* What it allocates from the EAL heap whatever the socket: with the
 * extendable table in lock-free mode, one word per slot that remembers the
 * buckets to free (ext_bkt_to_free, a plain rte_zmalloc). */
size_t hash_eal_bytes(uint32_t entries) noexcept
{
    return needs_extendable_buckets(entries) ? size_t{4} * (entries + 1) : 0;
}

/* The IPv6 table's hash function: flow_hash() of a key, which leaves out
 * its zero padding. rte_hash calls its hash function on the caller's key,
 * for the calls without a precomputed hash (the table always passes one;
 * rte_hash_hash and plain lookups in tests and benchmarks do not). The IPv4
 * table hashes all 16 bytes with rte_hash_crc itself. */
uint32_t key6_hash(const void *key, uint32_t /* key_len */, uint32_t init) noexcept
{
    return rte_hash_crc(key, kFlowKey6HashBytes, init);
}

rte_hash *create_hash(const std::string &name, uint32_t capacity, uint32_t key_len, int socket)
{
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = hash_entries(capacity);
    p.key_len = key_len;
    /* The same CRC32-C and seed as flow_hash(): workers hash each key once
     * and pass the value to the _with_hash_ lookups. */
    p.hash_func = key_len == sizeof(FlowKey6) ? key6_hash : rte_hash_crc;
    p.hash_func_init_val = kFlowHashSeed;
    p.socket_id = socket;
    /* Lock-free readers. Lock-free mode implies NO_FREE_ON_DEL: a delete
     * returns the key's position and the slot stays taken until the table's
     * defer queue frees it after a grace period. No rte_hash_rcu_qsbr_add:
     * its defer queue is sized to the whole table (16 B per slot). */
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
    if (needs_extendable_buckets(p.entries))
        p.extra_flag |= RTE_HASH_EXTRA_FLAGS_EXT_TABLE;

    /* rte_hash_create leaves rte_errno alone when an allocation fails (or
     * at ENOENT, from looking for a table of the same name); its ring of
     * free slots sets ENOMEM. */
    rte_errno = 0;
    rte_hash *h = rte_hash_create(&p);
    if (h == nullptr) {
        if (rte_errno != 0 && rte_errno != ENOENT && rte_errno != ENOMEM)
            throw std::runtime_error(
                fmt::format("cannot create ownership table {} ({} entries): {}", name, p.entries,
                            rte_strerror(rte_errno)));
        throw std::runtime_error(fmt::format(
            "cannot create ownership table {} ({} entries): out of memory (it needs {} MB in "
            "the table's heap and {} MB in the EAL heap, eal.memory_mb)",
            name, p.entries, (hash_bytes(p.entries, key_len) >> 20) + 1,
            (hash_eal_bytes(p.entries) >> 20) + 1));
    }
    return h;
}

/* One deleted key slot waiting for its grace period. */
struct DeferredSlot {
    uint32_t ipv6;    /**< 0: the IPv4 table, 1: the IPv6 table */
    int32_t position; /**< as returned by rte_hash_del_key_with_hash */
};
static_assert(sizeof(DeferredSlot) % 4 == 0, "defer queue elements are multiples of 4 B");

/* Slots freed by the reclamation that rte_rcu_qsbr_dq_enqueue starts itself
 * on every call: small steps, so a delete never does much work. */
constexpr uint32_t kReclaimPerEnqueue = 32;

inline void *word_to_data(uint64_t w) noexcept
{
    return reinterpret_cast<void *>(static_cast<uintptr_t>(w));
}

inline uint64_t data_to_word(const void *d) noexcept
{
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(d));
}

} // namespace

size_t OwnershipTable::memory_bound(uint32_t capacity_ipv4, uint32_t capacity_ipv6) noexcept
{
    /* Each allocation is page-aligned at worst (rings are memzones) and
     * carries a malloc header: 1 MB covers the dozen of them. */
    constexpr size_t kOverhead = size_t{1} << 20;
    return hash_bytes(hash_entries(capacity_ipv4), sizeof(FlowKey4)) +
           hash_bytes(hash_entries(capacity_ipv6), sizeof(FlowKey6)) + kOverhead;
}

size_t OwnershipTable::eal_memory_bound(uint32_t capacity_ipv4, uint32_t capacity_ipv6) noexcept
{
    /* The defer queue: a ring of kDeferQueueSize + 1 elements of a token
     * and a DeferredSlot; 64 kB covers the headers and alignment. */
    constexpr size_t kDeferQueue = size_t{kDeferQueueSize + 1} * 16 + (size_t{64} << 10);
    return hash_eal_bytes(hash_entries(capacity_ipv4)) +
           hash_eal_bytes(hash_entries(capacity_ipv6)) + kDeferQueue;
}

OwnershipTable::OwnershipTable(const Params &params)
{
    if (params.qsbr == nullptr)
        throw std::invalid_argument("ownership table needs an RCU QSBR variable");
    qsbr_ = params.qsbr;
    stamps_ = std::make_unique<std::atomic<uint32_t>[]>(kStampSlots);
    h4_ =
        create_hash(params.name + "_v4", params.capacity_ipv4, sizeof(FlowKey4), params.socket_id);
    try {
        h6_ = create_hash(params.name + "_v6", params.capacity_ipv6, sizeof(FlowKey6),
                          params.socket_id);
    } catch (...) {
        rte_hash_free(h4_);
        throw;
    }

    /* The queue (a ring of 2^14 elements of 16 bytes: 256 kB) holds the
     * slots deleted within one grace period. Workers report a quiescent
     * state every loop iteration (microseconds) and are offline while
     * asleep, so a grace period is short; the writer deletes at most one
     * ageing slice (4096 entries, 256 times a second) plus gossip releases
     * between two loop iterations. kDeferQueueSize holds four slices; a
     * longer grace period makes remove() wait, never lose a slot. */
    const std::string dq_name = params.name + "_dq";
    rte_rcu_qsbr_dq_parameters dq{};
    dq.name = dq_name.c_str();
    dq.flags = RTE_RCU_QSBR_DQ_MT_UNSAFE; /* one writer */
    dq.size = kDeferQueueSize;
    dq.esize = sizeof(DeferredSlot);
    dq.trigger_reclaim_limit = 0;
    dq.max_reclaim_size = kReclaimPerEnqueue;
    dq.free_fn = &OwnershipTable::free_deferred;
    dq.p = this;
    dq.v = qsbr_;
    dq_ = rte_rcu_qsbr_dq_create(&dq);
    if (dq_ == nullptr) {
        const int err = rte_errno;
        rte_hash_free(h6_);
        rte_hash_free(h4_);
        throw std::runtime_error(
            fmt::format("cannot create the defer queue of ownership table {}: {}", params.name,
                        rte_strerror(err)));
    }
    cap4_ = params.capacity_ipv4;
    cap6_ = params.capacity_ipv6;
}

OwnershipTable::~OwnershipTable()
{
    /* With every reader offline all deferred slots have passed their grace
     * period: the queue frees them into the tables, then itself. A reader
     * still online (a broken contract) makes the delete fail; waiting for it
     * could block forever, so the queue is left allocated (its slots go with
     * the tables). */
    if (rte_rcu_qsbr_dq_delete(dq_) != 0)
        fmt::print(stderr,
                   "flowhome: ownership table destroyed while a reader is online; "
                   "its defer queue ({} slots) is not freed\n",
                   deferred_);
    rte_hash_free(h6_);
    rte_hash_free(h4_);
}

void OwnershipTable::free_deferred(void *table, void *entries, unsigned n) noexcept
{
    auto *t = static_cast<OwnershipTable *>(table);
    const auto *slots = static_cast<const DeferredSlot *>(entries);
    for (unsigned i = 0; i < n; ++i) {
        /* In lock-free mode with an extendable table this also recycles the
         * extendable bucket the delete emptied (rte_hash keeps it in
         * ext_bkt_to_free under the key's position). */
        rte_hash_free_key_with_position(t->hash_of(slots[i].ipv6 ? Family::ipv6 : Family::ipv4),
                                        slots[i].position);
        --t->deferred_;
    }
}

uint32_t OwnershipTable::reclaim(uint32_t max) noexcept
{
    unsigned freed = 0;
    rte_rcu_qsbr_dq_reclaim(dq_, max, &freed, nullptr, nullptr);
    return freed;
}

void OwnershipTable::defer_free(Family f, int32_t position) noexcept
{
    DeferredSlot slot{.ipv6 = f == Family::ipv6 ? 1u : 0u, .position = position};
    if (deferred_ >= kDeferQueueSize && reclaim(kDeferQueueSize) == 0) {
        /* Every queued slot is still within its grace period. Count the wait
         * before it starts, then wait for one grace period: every queued
         * slot was enqueued before it, so all of them become free. The
         * writer (control lcore) is not a registered reader, hence
         * RTE_QSBR_THRID_INVALID. */
        reclaim_waits_.fetch_add(1, std::memory_order_relaxed);
        rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
        reclaim(kDeferQueueSize);
    }
    if (rte_rcu_qsbr_dq_enqueue(dq_, &slot) == 0) {
        ++deferred_;
        return;
    }
    /* Not reached while the accounting above holds; if it did, the slot is
     * still not lost: wait for the readers and free it now. */
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    rte_hash_free_key_with_position(hash_of(f), position);
}

namespace {

/* One bulk lookup with precomputed hashes; copies out every data word (the
 * misses' words are ignored by the caller through the hit mask). */
template <typename Key>
uint64_t bulk_call(const rte_hash *h, const Key *const *keys, const uint32_t *hashes, unsigned n,
                   OwnerRecord *records) noexcept
{
    uint64_t hits = 0;
    void *data[kLookupBulkMax];
    rte_hash_lookup_with_hash_bulk_data(
        h, reinterpret_cast<const void **>(const_cast<const Key **>(keys)),
        const_cast<hash_sig_t *>(hashes), n, &hits, data);
    /* The data words are the records as OwnerRecord lays them out: one
     * copy of the burst, not an unpacking per key. */
    std::memcpy(records, data, n * sizeof(OwnerRecord));
    return hits;
}

/*
 * DPDK's lock-free bulk lookup (22.11, and later releases alike) returns at
 * once when every key was found in the main buckets, testing
 * hits == (1ULL << n) - 1. For n = 64 that shift is undefined, and x86
 * makes it 1 << 0: the test becomes hits == 0, and a 64-key burst of which
 * no key was found returns there, before the two steps that follow it:
 * the search of the extendable buckets (a busy flow whose key was pushed
 * there missed every full burst), and the re-read of the table's change
 * counter, which repeats a lookup that ran while the writer moved a key
 * from one bucket to the other (the burst's one flow in the table, caught
 * in the move, came back a miss). Such a burst is looked up again in two
 * halves, on buckets the first call has just brought into the cache: it is
 * rare (no key of 64 found), and each half takes DPDK's full path.
 */
template <typename Key>
uint64_t lookup_with_retry(const rte_hash *h, const Key *const *keys, const uint32_t *hashes,
                           unsigned n, OwnerRecord *records) noexcept
{
    constexpr unsigned kHalf = kLookupBulkMax / 2;
    if (n == 0)
        return 0;
    const uint64_t hits = bulk_call(h, keys, hashes, n, records);
    if (n < kLookupBulkMax || hits != 0)
        return hits;
    return bulk_call(h, keys, hashes, kHalf, records) |
           bulk_call(h, keys + kHalf, hashes + kHalf, kHalf, records + kHalf) << kHalf;
}

} // namespace

uint64_t OwnershipTable::lookup_bulk4(const FlowKey4 *const *keys, const uint32_t *hashes,
                                      unsigned n, OwnerRecord *records) const noexcept
{
    return lookup_with_retry(h4_, keys, hashes, n, records);
}

uint64_t OwnershipTable::lookup_bulk6(const FlowKey6 *const *keys, const uint32_t *hashes,
                                      unsigned n, OwnerRecord *records) const noexcept
{
    return lookup_with_retry(h6_, keys, hashes, n, records);
}

std::optional<OwnerRecord> OwnershipTable::lookup(const FlowKey &key) const noexcept
{
    if (key.family != Family::ipv4 && key.family != Family::ipv6)
        return std::nullopt;
    rte_hash *h = hash_of(key.family);
    void *data = nullptr;
    if (rte_hash_lookup_with_hash_data(h, key.bytes(), flow_hash(key), &data) < 0)
        return std::nullopt;
    return OwnerRecord::unpack(data_to_word(data));
}

UpsertResult OwnershipTable::upsert(const FlowKey &key, OwnerRecord record,
                                    Presence presence) noexcept
{
    if (key.family != Family::ipv4 && key.family != Family::ipv6)
        return UpsertResult::error;
    rte_hash *h = hash_of(key.family);
    const void *k = key.bytes();
    const hash_sig_t sig = flow_hash(key);
    const bool existed = presence == Presence::unknown ? rte_hash_lookup_with_hash(h, k, sig) >= 0
                                                       : presence == Presence::present;
    /* In lock-free mode an existing key's data word is replaced with a single
     * atomic store, so readers see the old or the new record, never a mix. */
    int rc = rte_hash_add_key_with_hash_data(h, k, sig, word_to_data(record.pack()));
    /* No free slot (or extendable bucket): some may only wait for a grace
     * period that has passed already. */
    if (rc == -ENOSPC && reclaim(kDeferQueueSize) != 0)
        rc = rte_hash_add_key_with_hash_data(h, k, sig, word_to_data(record.pack()));
    if (rc == 0) {
        bump_stamp(sig);
        if (existed)
            return UpsertResult::updated;
        auto &live = live_of(key.family);
        live.store(live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        ++mutations_;
        return UpsertResult::inserted;
    }
    if (rc != -ENOSPC)
        return UpsertResult::error;
    /* The whole table full (rte_hash_count() counts the slots still in the
     * defer queue too), or only this key's two buckets? Only the first
     * refuses new flows, and only while its live flows leave less than
     * the room it reopens at: slots that wait for their grace period after
     * removals are free moments later, and only a removal would clear the
     * flag (a refusing table receives no claims); until then each claim
     * that finds them still waiting is refused alone. */
    const Family f = key.family;
    if (static_cast<uint32_t>(rte_hash_count(h)) >= hash_entries(capacity(f)) &&
        !has_reopen_room(f, live_of(f).load(std::memory_order_relaxed)))
        refusing_of(f).store(true, std::memory_order_relaxed);
    return UpsertResult::full;
}

bool OwnershipTable::has_reopen_room(Family f, uint32_t live) const noexcept
{
    const uint32_t cap = hash_entries(capacity(f));
    return live + std::max(1u, cap / kReopenShare) <= cap;
}

bool OwnershipTable::remove(const FlowKey &key) noexcept
{
    if (key.family != Family::ipv4 && key.family != Family::ipv6)
        return false;
    rte_hash *h = hash_of(key.family);
    /* The key slot goes to the defer queue and is reused only after every
     * reader has reported a quiescent state. */
    const hash_sig_t sig = flow_hash(key);
    const int32_t position = rte_hash_del_key_with_hash(h, key.bytes(), sig);
    if (position < 0)
        return false;
    bump_stamp(sig);
    auto &live = live_of(key.family);
    const uint32_t now_live = live.load(std::memory_order_relaxed) - 1;
    live.store(now_live, std::memory_order_relaxed);
    if (auto &refusing = refusing_of(key.family);
        refusing.load(std::memory_order_relaxed) && has_reopen_room(key.family, now_live))
        refusing.store(false, std::memory_order_relaxed);
    ++mutations_;
    defer_free(key.family, position);
    return true;
}

bool OwnershipTable::next(Family f, uint32_t &cursor, FlowKey &key, OwnerRecord &rec) const noexcept
{
    const void *bytes = nullptr;
    void *data = nullptr;
    /* rte_hash_iterate walks the main table then the extendable buckets, and
     * returns -ENOENT for any position past the end. */
    if (rte_hash_iterate(hash_of(f), &bytes, &data, &cursor) < 0)
        return false;
    key = FlowKey::from_key_bytes(f, bytes);
    rec = OwnerRecord::unpack(data_to_word(data));
    return true;
}

bool OwnershipTable::next(Walk &w, FlowKey &key, OwnerRecord &rec) const noexcept
{
    while (!w.ended) {
        if (next(w.family, w.position, key, rec))
            return true;
        w.ended = w.family == Family::ipv6;
        w.family = Family::ipv6;
        w.position = 0;
    }
    return false;
}

AgeResult OwnershipTable::age(uint16_t now, uint16_t tcp_timeout_s, uint16_t udp_timeout_s,
                              uint32_t budget, const ExpiryFn &on_expiry) noexcept
{
    AgeResult result;
    /* Expired entries are copied out and handled after the scan step:
     * deleting may compact an extendable bucket under the iterator. */
    constexpr unsigned kBatch = 64;
    FlowKey expired[kBatch];
    OwnerRecord expired_rec[kBatch];
    /* Tables swept to their end, or not to be started again this second. */
    unsigned tables_done = 0;

    while (result.examined < budget && tables_done < 2) {
        const bool v6 = age_v6_turn_;
        const Family f = v6 ? Family::ipv6 : Family::ipv4;
        uint32_t &cursor = v6 ? age_cursor6_ : age_cursor4_;
        uint32_t &pass = v6 ? age_pass6_ : age_pass4_;
        if (cursor == 0) {
            if (pass == now) {
                age_v6_turn_ = !age_v6_turn_;
                ++tables_done;
                continue;
            }
            pass = now;
        }
        unsigned n = 0;
        bool end = false;

        while (n < kBatch && result.examined < budget) {
            FlowKey k;
            OwnerRecord rec;
            const uint32_t from = cursor;
            end = !next(f, cursor, k, rec);
            result.scanned += cursor - from;
            if (end)
                break;
            ++result.examined;
            if (rec.flags & owner_flag::pinned)
                continue;
            const uint16_t timeout = k.proto() == kProtoTcp ? tcp_timeout_s : udp_timeout_s;
            if (idle_beyond(now, rec.epoch, timeout)) {
                expired[n] = k;
                expired_rec[n++] = rec;
            }
        }
        for (unsigned i = 0; i < n; ++i) {
            if (on_expiry && on_expiry(expired[i], expired_rec[i]))
                ++result.taken;
            else
                result.expired += remove(expired[i]) ? 1 : 0;
        }
        if (end) {
            cursor = 0;
            age_v6_turn_ = !age_v6_turn_;
            ++tables_done;
        }
    }
    return result;
}

uint32_t OwnershipTable::count(Family f) const noexcept
{
    return live_of(f).load(std::memory_order_relaxed);
}

uint32_t OwnershipTable::capacity(Family f) const noexcept
{
    return f == Family::ipv4 ? cap4_ : cap6_;
}

bool OwnershipTable::extendable(Family f) const noexcept
{
    return needs_extendable_buckets(hash_entries(capacity(f)));
}

} // namespace flowhome
