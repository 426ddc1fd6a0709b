/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The timestamp of a capture copy: an Enhanced Packet Block (pcapng,
 * section 4.3), as rte_pcapng_copy() builds it at the start of the copy,
 * has its upper and lower 32 bits at bytes 12 and 16, in the file's byte
 * order, which is the host's. A CaptureTap stores the TSC reading of the
 * copy there; the writer thread replaces it with nanoseconds since the
 * epoch.
 */
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

namespace flowhome {

inline uint64_t capture_time(const rte_mbuf *copy) noexcept
{
    const auto *w = rte_pktmbuf_mtod_offset(copy, const uint32_t *, 12);
    return uint64_t{w[0]} << 32 | w[1];
}

inline void set_capture_time(rte_mbuf *copy, uint64_t t) noexcept
{
    auto *w = rte_pktmbuf_mtod_offset(copy, uint32_t *, 12);
    w[0] = static_cast<uint32_t>(t >> 32);
    w[1] = static_cast<uint32_t>(t);
}

} // namespace flowhome
