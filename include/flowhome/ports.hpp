/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Port set-up: resolving a configured device to a DPDK port and configuring
 * it. Main lcore, start-up only; throws std::runtime_error naming the port
 * and the DPDK error.
 */
#pragma once

#include <cstdint>

#include "flowhome/config.hpp"
#include "flowhome/types.hpp"

struct rte_mempool;

namespace flowhome {

/** The DPDK port id of @p port's device. Throws when the EAL has no such port. */
uint16_t find_port(const PortConfig &port);

/**
 * Configures @p port_id with @p rx_queues RX and @p tx_queues TX queues,
 * RSS across the first @p rss_queues RX queues (the others are steered by
 * rte_flow only) when the device supports it, the configured MTU, MAC and
 * promiscuity, and starts it.
 */
void configure_port(uint16_t port_id, const PortConfig &port, uint16_t rx_queues,
                    uint16_t tx_queues, uint16_t rss_queues, rte_mempool *pool);

/** The port's MAC address. */
MacAddr port_mac(uint16_t port_id);

} // namespace flowhome
