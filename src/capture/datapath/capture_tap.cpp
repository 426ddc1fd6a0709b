/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker side of a capture: copy a packet into the tap's pool and queue
 * the copy for the writer thread. Runs only while a capture is active; the
 * original packet is never touched.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_pcapng is experimental in DPDK 22.11 */
#include "flowhome/capture.hpp"
#include "../capture_time.hpp"

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_pcapng.h>
#include <rte_ring.h>

namespace flowhome {

void CaptureTap::copy(const rte_mbuf *m, uint16_t port_id, uint16_t queue, bool out) noexcept
{
    /* The time, as a TSC reading in the block's timestamp: the writer
     * thread turns it into nanoseconds (DPDK 22.11 converts with a clock it
     * shares among all callers and moves without a lock, and its first
     * call moves it a few centuries ahead for good). */
    const uint64_t tsc = rte_get_tsc_cycles();
    rte_mbuf *c = rte_pcapng_copy(port_id, queue, m, pool, snaplen, tsc,
                                  out ? RTE_PCAPNG_DIRECTION_OUT : RTE_PCAPNG_DIRECTION_IN);
    if (unlikely(c == nullptr)) {
        lost.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    set_capture_time(c, tsc);
    if (unlikely(rte_ring_enqueue(ring, c) != 0)) {
        rte_pktmbuf_free(c);
        lost.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    /* Several workers may capture at once: an atomic add, paid only while
     * capturing. */
    captured.fetch_add(1, std::memory_order_relaxed);
}

void CaptureTap::offer_rx(uint16_t port_id, uint16_t queue, rte_mbuf *const *pkts,
                          uint16_t n) noexcept
{
    if (kind != Kind::port || port_id != port)
        return;
    for (uint16_t i = 0; i < n; ++i)
        copy(pkts[i], port_id, queue, false);
}

void CaptureTap::offer_tx(uint16_t port_id, uint16_t queue, rte_mbuf *const *pkts,
                          uint16_t n) noexcept
{
    if (kind != Kind::port || port_id != port)
        return;
    for (uint16_t i = 0; i < n; ++i)
        copy(pkts[i], port_id, queue, true);
}

void CaptureTap::offer_drop(DropReason why, const rte_mbuf *m, uint16_t port_id) noexcept
{
    if (kind != Kind::drop || why != reason)
        return;
    /* The interface it shows under in the file: the worker's word, not
     * m->port, which no PMD need set (net_ring does not) and which the
     * control lcore's frames left unset. The writer looks it up in an
     * array of RTE_MAX_ETHPORTS, unchecked. */
    if (unlikely(port_id >= RTE_MAX_ETHPORTS)) {
        lost.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    copy(m, port_id, 0, false);
}

} // namespace flowhome
