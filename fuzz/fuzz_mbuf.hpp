/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the mbuf harnesses (fuzz_decap, fuzz_encap,
 * fuzz_too_big): a FakeMbuf of one or two segments built from fuzzer bytes,
 * AddressSanitizer poisoning of everything outside the data, and a trap.
 */
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include <sanitizer/asan_interface.h>

#include "fake_mbuf.hpp"

namespace flowhome::fuzz {

using test::FakeMbuf;

inline void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

/*
 * Marks the buffer of every segment outside its data as unreadable, except
 * the last @p writable_headroom bytes of the first segment's headroom (what
 * the function under test may prepend).
 */
inline void poison_outside_data(rte_mbuf *m, uint32_t writable_headroom = 0)
{
    for (rte_mbuf *s = m; s != nullptr; s = s->next) {
        auto *buf = static_cast<uint8_t *>(s->buf_addr);
        const uint32_t keep = s == m ? writable_headroom : 0;
        if (s->data_off > keep)
            ASAN_POISON_MEMORY_REGION(buf, s->data_off - keep);
        const size_t end = static_cast<size_t>(s->data_off) + s->data_len;
        ASAN_POISON_MEMORY_REGION(buf + end, s->buf_len - end);
    }
}

inline void unpoison(rte_mbuf *m)
{
    for (rte_mbuf *s = m; s != nullptr; s = s->next)
        ASAN_UNPOISON_MEMORY_REGION(s->buf_addr, s->buf_len);
}

/*
 * A frame in one FakeMbuf, or in two chained ones: the first @p split bytes
 * in the head (after @p headroom bytes of headroom), the rest in the tail
 * (with the tail's refcount @p tail_refcnt, see FakeMbuf::chain). On the
 * heap, so that a write past a buffer's end leaves the object and is seen.
 */
struct Frame {
    std::unique_ptr<FakeMbuf> head;
    std::unique_ptr<FakeMbuf> tail;

    Frame(const std::vector<uint8_t> &bytes, uint16_t headroom, size_t split,
          uint16_t tail_refcnt = 1)
    {
        if (split == 0 || split >= bytes.size()) {
            head = std::make_unique<FakeMbuf>(bytes, headroom);
            return;
        }
        head = std::make_unique<FakeMbuf>(
            std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(split)),
            headroom);
        tail = std::make_unique<FakeMbuf>(
            std::vector<uint8_t>(bytes.begin() + static_cast<long>(split), bytes.end()), 0);
        head->chain(*tail, tail_refcnt);
    }
    rte_mbuf *get() const noexcept { return head->get(); }
    bool chained() const noexcept { return tail != nullptr; }
};

/* The mbuf fields a refused call must leave alone, and the bytes. */
struct Snapshot {
    uint16_t data_off, data_len, nb_segs;
    uint32_t pkt_len;
    std::vector<uint8_t> bytes;

    explicit Snapshot(const Frame &f)
        : data_off(f.get()->data_off), data_len(f.get()->data_len), nb_segs(f.get()->nb_segs),
          pkt_len(f.get()->pkt_len), bytes(f.head->packet_bytes())
    {
    }
    friend bool operator==(const Snapshot &, const Snapshot &) = default;
};

} // namespace flowhome::fuzz
