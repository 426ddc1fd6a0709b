/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/ownership.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_rcu_qsbr.h>

namespace flowhome {
namespace {

/* rte_hash refuses tables below 8 entries (one bucket). */
constexpr uint32_t kMinEntries = 8;

rte_hash *create_hash(const std::string &name, uint32_t entries, uint32_t key_len, int socket,
                      rte_rcu_qsbr *qsbr)
{
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = entries < kMinEntries ? kMinEntries : entries;
    p.key_len = key_len;
    /* The same CRC32-C and seed as flow_hash(): workers hash each key once
     * and pass the value to the _with_hash_ lookups. */
    p.hash_func = rte_hash_crc;
    p.hash_func_init_val = kFlowHashSeed;
    p.socket_id = socket;
    /* Lock-free readers; an extendable bucket table so that a crowded bucket
     * does not refuse an insert while the table has room (capacity means
     * capacity). Lock-free mode implies NO_FREE_ON_DEL; the RCU defer queue
     * below frees the slots. */
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;

    rte_hash *h = rte_hash_create(&p);
    if (h == nullptr)
        throw std::runtime_error(fmt::format("cannot create ownership table {} ({} entries): {}",
                                             name, p.entries, rte_strerror(rte_errno)));

    rte_hash_rcu_config rcu{};
    rcu.v = qsbr;
    rcu.mode = RTE_HASH_QSBR_MODE_DQ;
    if (int rc = rte_hash_rcu_qsbr_add(h, &rcu); rc != 0) {
        rte_hash_free(h);
        throw std::runtime_error(fmt::format("cannot attach RCU to ownership table {}: {}", name,
                                             rte_strerror(rte_errno ? rte_errno : -rc)));
    }
    return h;
}

inline void *word_to_data(uint64_t w) noexcept
{
    return reinterpret_cast<void *>(static_cast<uintptr_t>(w));
}

inline uint64_t data_to_word(const void *d) noexcept
{
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(d));
}


} // namespace

OwnershipTable::OwnershipTable(const Params &params)
{
    if (params.qsbr == nullptr)
        throw std::invalid_argument("ownership table needs an RCU QSBR variable");
    h4_ = create_hash(params.name + "_v4", params.capacity_ipv4, sizeof(FlowKey4), params.socket_id,
                      params.qsbr);
    try {
        h6_ = create_hash(params.name + "_v6", params.capacity_ipv6, sizeof(FlowKey6),
                          params.socket_id, params.qsbr);
    } catch (...) {
        rte_hash_free(h4_);
        throw;
    }
    cap4_ = params.capacity_ipv4;
    cap6_ = params.capacity_ipv6;
}

OwnershipTable::~OwnershipTable()
{
    rte_hash_free(h6_);
    rte_hash_free(h4_);
}

namespace {

/* One bulk lookup with precomputed hashes; unpacks every data word (the
 * misses' words are ignored by the caller through the hit mask). */
template <typename Key>
uint64_t lookup_bulk(const rte_hash *h, const Key *const *keys, const uint32_t *hashes, unsigned n,
                     OwnerRecord *records) noexcept
{
    uint64_t hits = 0;
    void *data[kLookupBulkMax];
    if (n == 0)
        return 0;
    rte_hash_lookup_with_hash_bulk_data(
        h, reinterpret_cast<const void **>(const_cast<const Key **>(keys)),
        const_cast<hash_sig_t *>(hashes), n, &hits, data);
    for (unsigned i = 0; i < n; ++i)
        records[i] = OwnerRecord::unpack(data_to_word(data[i]));
    return hits;
}

} // namespace

uint64_t OwnershipTable::lookup_bulk4(const FlowKey4 *const *keys, const uint32_t *hashes,
                                      unsigned n, OwnerRecord *records) const noexcept
{
    return lookup_bulk(h4_, keys, hashes, n, records);
}

uint64_t OwnershipTable::lookup_bulk6(const FlowKey6 *const *keys, const uint32_t *hashes,
                                      unsigned n, OwnerRecord *records) const noexcept
{
    return lookup_bulk(h6_, keys, hashes, n, records);
}

std::optional<OwnerRecord> OwnershipTable::lookup(const FlowKey &key) const noexcept
{
    if (key.family != Family::ipv4 && key.family != Family::ipv6)
        return std::nullopt;
    rte_hash *h = key.family == Family::ipv4 ? h4_ : h6_;
    void *data = nullptr;
    if (rte_hash_lookup_with_hash_data(h, key.bytes(), flow_hash(key), &data) < 0)
        return std::nullopt;
    return OwnerRecord::unpack(data_to_word(data));
}

UpsertResult OwnershipTable::upsert(const FlowKey &key, OwnerRecord record) noexcept
{
    if (key.family != Family::ipv4 && key.family != Family::ipv6)
        return UpsertResult::error;
    rte_hash *h = key.family == Family::ipv4 ? h4_ : h6_;
    const void *k = key.bytes();
    const hash_sig_t sig = flow_hash(key);
    /* In lock-free mode an existing key's data word is replaced with a single
     * atomic store, so readers see the old or the new record, never a mix. */
    const bool existed = rte_hash_lookup_with_hash(h, k, sig) >= 0;
    const int rc = rte_hash_add_key_with_hash_data(h, k, sig, word_to_data(record.pack()));
    if (rc == 0) {
        if (existed)
            return UpsertResult::updated;
        auto &live = key.family == Family::ipv4 ? live4_ : live6_;
        live.store(live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return UpsertResult::inserted;
    }
    return rc == -ENOSPC ? UpsertResult::full : UpsertResult::error;
}

bool OwnershipTable::remove(const FlowKey &key) noexcept
{
    if (key.family != Family::ipv4 && key.family != Family::ipv6)
        return false;
    rte_hash *h = key.family == Family::ipv4 ? h4_ : h6_;
    /* With RCU attached, the key slot goes to the defer queue and is reused
     * only after every reader has reported a quiescent state. */
    if (rte_hash_del_key_with_hash(h, key.bytes(), flow_hash(key)) < 0)
        return false;
    auto &live = key.family == Family::ipv4 ? live4_ : live6_;
    live.store(live.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return true;
}

bool OwnershipTable::next_entry(rte_hash *h, uint32_t *cursor, const void **key,
                                uint64_t *word) noexcept
{
    void *data = nullptr;
    if (rte_hash_iterate(h, key, &data, cursor) < 0)
        return false;
    *word = data_to_word(data);
    return true;
}

AgeResult OwnershipTable::age(uint16_t now, uint16_t tcp_timeout_s, uint16_t udp_timeout_s,
                              uint32_t budget) noexcept
{
    AgeResult result;
    /* Expired keys are copied out and deleted after the scan step: deleting
     * may compact an extendable bucket under the iterator. */
    constexpr unsigned kBatch = 64;
    FlowKey expired[kBatch];
    unsigned tables_finished = 0;

    while (result.examined < budget) {
        const bool v6 = age_v6_turn_;
        rte_hash *h = v6 ? h6_ : h4_;
        uint32_t *cursor = v6 ? &age_cursor6_ : &age_cursor4_;
        unsigned n = 0;
        bool end = false;

        while (n < kBatch && result.examined < budget) {
            const void *key;
            uint64_t word;
            if (!next_entry(h, cursor, &key, &word)) {
                end = true;
                break;
            }
            ++result.examined;
            const OwnerRecord rec = OwnerRecord::unpack(word);
            if (rec.flags & owner_flag::pinned)
                continue;
            const FlowKey k = FlowKey::from_key_bytes(v6 ? Family::ipv6 : Family::ipv4, key);
            const uint16_t timeout = k.proto() == kProtoTcp ? tcp_timeout_s : udp_timeout_s;
            const auto idle = static_cast<uint16_t>(now - rec.epoch);
            if (idle > timeout)
                expired[n++] = k;
        }
        for (unsigned i = 0; i < n; ++i)
            result.expired += remove(expired[i]) ? 1 : 0;
        if (end) {
            *cursor = 0;
            age_v6_turn_ = !age_v6_turn_;
            /* At most one full pass over each table per call, however
             * large the budget. */
            if (++tables_finished == 2)
                break;
        }
    }
    return result;
}

uint32_t OwnershipTable::count(Family f) const noexcept
{
    return (f == Family::ipv4 ? live4_ : live6_).load(std::memory_order_relaxed);
}

uint32_t OwnershipTable::capacity(Family f) const noexcept
{
    return f == Family::ipv4 ? cap4_ : cap6_;
}

} // namespace flowhome
