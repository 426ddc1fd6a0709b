/* SPDX-License-Identifier: BSD-3-Clause */
/* In-memory FlowStore for the simulator and the unit tests. */
#include "flowhome/map_flow_store.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace flowhome {

bool flow_key_less(const FlowKey &a, const FlowKey &b) noexcept
{
    if (a.family != b.family)
        return a.family < b.family;
    return a.family == Family::ipv4 ? std::memcmp(&a.v4, &b.v4, sizeof(a.v4)) < 0
                                    : std::memcmp(&a.v6, &b.v6, sizeof(a.v6)) < 0;
}

MapFlowStore::MapFlowStore(uint32_t capacity) : capacity_(capacity) {}

std::optional<OwnerRecord> MapFlowStore::lookup(const FlowKey &key) const noexcept
{
    const auto it = index_.find(key);
    if (it == index_.end())
        return std::nullopt;
    return slots_[it->second].record;
}

UpsertResult MapFlowStore::upsert(const FlowKey &key, OwnerRecord record,
                                  Presence presence) noexcept
{
    /* The node's table takes the hint on trust; the engine's tests and the
     * simulator, over this store, check every one. */
    assert(presence == Presence::unknown ||
           index_.contains(key) == (presence == Presence::present));
    (void)presence;
    if (key.family != Family::ipv4 && key.family != Family::ipv6)
        return UpsertResult::error;
    if (const auto it = index_.find(key); it != index_.end()) {
        slots_[it->second].record = record;
        return UpsertResult::updated;
    }
    if (index_.size() >= capacity_)
        return UpsertResult::full;
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        slot = static_cast<uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    slots_[slot] = Slot{key, record, true};
    index_.emplace(key, slot);
    return UpsertResult::inserted;
}

bool MapFlowStore::remove(const FlowKey &key) noexcept
{
    const auto it = index_.find(key);
    if (it == index_.end())
        return false;
    slots_[it->second].used = false;
    free_.push_back(it->second);
    index_.erase(it);
    return true;
}

uint32_t MapFlowStore::scan(uint64_t &cursor, uint32_t budget,
                            const std::function<void(const FlowKey &, OwnerRecord)> &fn)
{
    /* cursor = 1 + next slot; an untrusted cursor past the end ends the walk. */
    uint64_t pos = cursor == 0 ? 0 : cursor - 1;
    uint32_t visited = 0;
    while (pos < slots_.size() && visited < budget) {
        const Slot &s = slots_[pos++];
        if (!s.used)
            continue;
        fn(s.key, s.record);
        ++visited;
    }
    /* Skip trailing free slots so that a walk that visited the last entry
     * reports the end now rather than after one more empty call. */
    while (pos < slots_.size() && !slots_[pos].used)
        ++pos;
    cursor = pos >= slots_.size() ? 0 : pos + 1;
    return visited;
}

uint32_t MapFlowStore::age(uint16_t now_epoch, uint16_t timeout_s) noexcept
{
    uint32_t removed = 0;
    for (Slot &s : slots_) {
        if (!s.used || (s.record.flags & owner_flag::pinned) != 0)
            continue;
        if (idle_beyond(now_epoch, s.record.epoch, timeout_s)) {
            remove(s.key);
            ++removed;
        }
    }
    return removed;
}

std::vector<std::pair<FlowKey, OwnerRecord>> MapFlowStore::entries() const
{
    std::vector<std::pair<FlowKey, OwnerRecord>> out;
    out.reserve(index_.size());
    for (const Slot &s : slots_)
        if (s.used)
            out.emplace_back(s.key, s.record);
    std::sort(out.begin(), out.end(),
              [](const auto &a, const auto &b) { return flow_key_less(a.first, b.first); });
    return out;
}

} // namespace flowhome
