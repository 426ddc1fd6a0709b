/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * A single-segment rte_mbuf over a stack buffer, for unit tests that run the
 * datapath functions without an EAL. Only rte_mbuf's inline helpers
 * (prepend, adj, trim, mtod) may be used on it, never a mempool operation.
 * Two of them make a two-segment chain (chain()); a chained tail with more
 * than one reference may even be "freed" by rte_pktmbuf_free(), which then
 * only drops a reference and never reaches a mempool.
 */
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include <rte_mbuf.h>

namespace flowhome::test {

class FakeMbuf {
public:
    static constexpr uint16_t kHeadroom = RTE_PKTMBUF_HEADROOM;
    static constexpr uint16_t kBufLen = 4096;

    /** Precondition: headroom + frame.size() <= kBufLen. */
    explicit FakeMbuf(const std::vector<uint8_t> &frame, uint16_t headroom = kHeadroom)
    {
        std::memset(&m_, 0, sizeof(m_));
        m_.buf_addr = storage_;
        m_.buf_len = kBufLen;
        m_.data_off = headroom;
        m_.nb_segs = 1;
        m_.port = 0;
        rte_mbuf_refcnt_set(&m_, 1);
        if (!frame.empty())
            std::memcpy(storage_ + headroom, frame.data(), frame.size());
        m_.data_len = static_cast<uint16_t>(frame.size());
        m_.pkt_len = static_cast<uint32_t>(frame.size());
    }

    rte_mbuf *get() noexcept { return &m_; }
    uint8_t *data() noexcept { return rte_pktmbuf_mtod(&m_, uint8_t *); }
    std::vector<uint8_t> bytes() const
    {
        const uint8_t *p = static_cast<const uint8_t *>(m_.buf_addr) + m_.data_off;
        return {p, p + m_.data_len};
    }

    /**
     * Makes @p tail this mbuf's second (and last) segment: nb_segs 2, pkt_len
     * the sum of both data lengths. @p tail_refcnt > 1 lets code that frees
     * the tail (rte_pktmbuf_free) drop one reference instead of handing a
     * FakeMbuf to a mempool; the caller can then check that it did.
     */
    void chain(FakeMbuf &tail, uint16_t tail_refcnt = 1) noexcept
    {
        m_.next = tail.get();
        m_.nb_segs = 2;
        m_.pkt_len = uint32_t{m_.data_len} + tail.m_.data_len;
        tail.m_.next = nullptr;
        tail.m_.nb_segs = 1;
        tail.m_.pkt_len = tail.m_.data_len;
        rte_mbuf_refcnt_set(&tail.m_, tail_refcnt);
    }

    /** The whole packet, every segment's data in order (pkt_len bytes if consistent). */
    std::vector<uint8_t> packet_bytes() const
    {
        std::vector<uint8_t> out;
        for (const rte_mbuf *s = &m_; s != nullptr; s = s->next) {
            const uint8_t *p = static_cast<const uint8_t *>(s->buf_addr) + s->data_off;
            out.insert(out.end(), p, p + s->data_len);
        }
        return out;
    }

private:
    rte_mbuf m_;
    alignas(64) uint8_t storage_[kBufLen];
};

} // namespace flowhome::test
