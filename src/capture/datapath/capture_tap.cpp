/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker side of a capture: copy a packet into the tap's pool and queue
 * the copy for the writer thread. Runs only while a capture is active; the
 * original packet is never touched.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_pcapng is experimental in DPDK 22.11 */
#include "flowhome/capture.hpp"

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_pcapng.h>
#include <rte_ring.h>

namespace flowhome {

void CaptureTap::copy(const rte_mbuf *m, uint16_t port_id, uint16_t queue, bool out) noexcept
{
    rte_mbuf *c = rte_pcapng_copy(port_id, queue, m, pool, snaplen, rte_get_tsc_cycles(),
                                  out ? RTE_PCAPNG_DIRECTION_OUT : RTE_PCAPNG_DIRECTION_IN);
    if (unlikely(c == nullptr)) {
        lost.fetch_add(1, std::memory_order_relaxed);
        return;
    }
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

void CaptureTap::offer_drop(DropReason why, const rte_mbuf *m) noexcept
{
    if (kind != Kind::drop || why != reason)
        return;
    /* The packet's receive port: the interface it shows under in the file. */
    copy(m, m->port, 0, false);
}

} // namespace flowhome
