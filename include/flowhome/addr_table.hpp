/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * AddrTable: the data path's small maps from an IP address to what it
 * stands for (the services of a VIP, the node id of a peer). Built once,
 * kept sorted; read per packet by a binary search without branches but the
 * loop's, which runs log2(n) times whatever the key, so traffic spread over
 * many addresses mispredicts nothing. The addresses lie packed, apart from
 * the values: a search over the few entries of most nodes reads one cache
 * line, over thousands a dozen.
 *
 * Threading: built on one lcore (insert() allocates and may throw); find()
 * from any lcore, read-only.
 */
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace flowhome {

/** An IPv4 address as it lies in a header, as one word: an order, not the
 *  addresses', is all a search needs. */
inline uint32_t addr_word4(const uint8_t *a) noexcept
{
    uint32_t w;
    std::memcpy(&w, a, sizeof(w));
    return w;
}

/** An IPv6 address as two words of its bytes, ordered as words. */
struct AddrWords6 {
    uint64_t hi;
    uint64_t lo;

    static AddrWords6 of(const uint8_t *a) noexcept
    {
        AddrWords6 w;
        std::memcpy(&w.hi, a, 8);
        std::memcpy(&w.lo, a + 8, 8);
        return w;
    }
    friend bool operator<(AddrWords6 a, AddrWords6 b) noexcept
    {
        /* One wide compare (cmp, sbb): a word-by-word one is a branch at
         * every step of the search. */
        return wide(a) < wide(b);
    }
    friend bool operator==(AddrWords6 a, AddrWords6 b) noexcept
    {
        return ((a.hi ^ b.hi) | (a.lo ^ b.lo)) == 0;
    }
    static unsigned __int128 wide(AddrWords6 w) noexcept
    {
        return static_cast<unsigned __int128>(w.hi) << 64 | w.lo;
    }
};

template <typename Addr, typename Value> class AddrTable {
public:
    /** Adds @p addr with @p value; false, and nothing changed, when the
     *  table has @p addr already. */
    bool insert(Addr addr, const Value &value)
    {
        const auto it = std::lower_bound(addrs_.begin(), addrs_.end(), addr);
        if (it != addrs_.end() && *it == addr)
            return false;
        const auto at = it - addrs_.begin();
        values_.insert(values_.begin() + at, value);
        try {
            addrs_.insert(addrs_.begin() + at, addr);
        } catch (...) {
            /* Never one vector longer than the other. */
            values_.erase(values_.begin() + at);
            throw;
        }
        return true;
    }

    /** The value at @p key, or nullptr. */
    const Value *find(Addr key) const noexcept
    {
        if (addrs_.empty())
            return nullptr;
        /* Halves the range until one address is left, then compares. */
        size_t base = 0;
        for (size_t len = addrs_.size(); len > 1; len -= len / 2)
            base = key < addrs_[base + len / 2] ? base : base + len / 2;
        return addrs_[base] == key ? &values_[base] : nullptr;
    }

    size_t size() const noexcept { return addrs_.size(); }

private:
    std::vector<Addr> addrs_;
    std::vector<Value> values_;
};

} // namespace flowhome
