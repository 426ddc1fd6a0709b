/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * A single-segment rte_mbuf over a stack buffer, for unit tests that run the
 * datapath functions without an EAL. Only rte_mbuf's inline helpers
 * (prepend, adj, trim, mtod) may be used on it, never a mempool operation.
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

    explicit FakeMbuf(const std::vector<uint8_t> &frame, uint16_t headroom = kHeadroom)
    {
        std::memset(&m_, 0, sizeof(m_));
        m_.buf_addr = storage_;
        m_.buf_len = kBufLen;
        m_.data_off = headroom;
        m_.nb_segs = 1;
        m_.port = 0;
        rte_mbuf_refcnt_set(&m_, 1);
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

private:
    rte_mbuf m_;
    alignas(64) uint8_t storage_[kBufLen];
};

} // namespace flowhome::test
