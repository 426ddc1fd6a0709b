/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Port set-up: resolving a configured device to a DPDK port and configuring
 * it. Main lcore, start-up only; throws std::runtime_error naming the port
 * and the DPDK error.
 */
#pragma once

#include <cstdint>
#include <stdexcept>

#include "flowhome/config.hpp"
#include "flowhome/types.hpp"

struct rte_mempool;

namespace flowhome {

/** The device refused the queues asked of it (their number, their set-up, or
 *  the RSS table spreading over some of them): fewer may do. */
class PortQueuesRefused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/** The DPDK port id of @p port's device. Throws when the EAL has no such port. */
uint16_t find_port(const PortConfig &port);

/**
 * Configures @p port_id with @p rx_queues RX and @p tx_queues TX queues,
 * RSS across the first @p rss_queues RX queues (the others are steered by
 * rte_flow only) when the device supports it, the configured MTU, MAC and
 * promiscuity, and starts it. Throws PortQueuesRefused for what fewer
 * queues might avoid (the port is left stopped), std::runtime_error for the
 * rest.
 */
void configure_port(uint16_t port_id, const PortConfig &port, uint16_t rx_queues,
                    uint16_t tx_queues, uint16_t rss_queues, rte_mempool *pool);

/** The port's MAC address. */
MacAddr port_mac(uint16_t port_id);

/**
 * A pool of @p n packet mbufs with @p data_room bytes of buffer each
 * (headroom included) and a per-lcore cache of @p cache, on @p socket: what
 * rte_pktmbuf_pool_create() makes, laid out as in hugepages wherever the
 * EAL runs without them. There, with IOVA as VA, rte_pktmbuf_pool_create()
 * puts one mbuf in each 4 KB page (an mbuf must not cross a page whose
 * IOVA might not follow the one before), so every mbuf header and every
 * packet's first bytes sit at the same offset in their page: in the same
 * few sets of the L1 and L2 caches, where a burst's mbufs evict each other,
 * with 40 % of each page unused. With IOVA as VA an mbuf may cross pages,
 * and this pool packs them back to back. Returns nullptr with rte_errno
 * set, as rte_pktmbuf_pool_create() does.
 */
rte_mempool *create_packet_pool(const char *name, unsigned n, unsigned cache, uint16_t data_room,
                                int socket) noexcept;

} // namespace flowhome
