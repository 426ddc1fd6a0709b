/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Port set-up: resolving a configured device to a DPDK port and configuring
 * it. Main lcore, start-up only; throws std::runtime_error naming the port
 * and the DPDK error.
 */
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string_view>

#include "flowhome/config.hpp"
#include "flowhome/types.hpp"

struct rte_mempool;
struct rte_eth_stats;

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
 * rte_eth_stats_get() under one lock for the process: the node's readers
 * (the terminal, the control socket's thread, the telemetry thread) may
 * ask at once, and ethdev's calls are not safe from two threads at once
 * (a driver that adds clear-on-read registers into its totals could lose
 * or count twice what one read took). Leaves @p out zeroed where the port
 * cannot say. Any thread but a worker's.
 */
void read_port_stats(uint16_t port_id, rte_eth_stats &out);

/**
 * Whether a pool whose mbufs go only to ports of these drivers may be laid
 * out without IOVAs (create_packet_pool()): every driver named moves
 * packets with the CPU, at the mbuf's virtual address (af_packet, memif,
 * null, pcap, ring, tap), and never hands a device the buffer's IOVA. Any
 * other driver (a PCI NIC, AF_XDP's shared buffer area) needs the IOVAs.
 */
bool packet_pool_may_pack(std::span<const std::string_view> drivers) noexcept;

/**
 * A pool of @p n packet mbufs with @p data_room bytes of buffer each
 * (headroom included) and a per-lcore cache of @p cache, on @p socket, for
 * the ports @p ports (none: mbufs no port receives into or sends): what
 * rte_pktmbuf_pool_create() makes, but laid out as in hugepages where the
 * EAL runs without them and packet_pool_may_pack() allows it.
 *
 * Without hugepages rte_pktmbuf_pool_create() puts one mbuf in each 4 KB
 * page (an mbuf's IOVA must be contiguous, and the next page's IOVA need
 * not follow), so every mbuf header and every packet's first bytes sit at
 * the same offset in their page: in the same few sets of the L1 and L2
 * caches, where a burst's mbufs evict each other, with 40 % of each page
 * unused. This pool packs them back to back, with no IOVA
 * (RTE_MEMPOOL_F_NO_IOVA_CONTIG: buf_iova is not an address), which only
 * the drivers of packet_pool_may_pack() can use. Returns nullptr with
 * rte_errno set, as rte_pktmbuf_pool_create() does.
 */
rte_mempool *create_packet_pool(const char *name, unsigned n, unsigned cache, uint16_t data_room,
                                int socket, std::span<const uint16_t> ports = {}) noexcept;

} // namespace flowhome
