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
 * Configures @p port_id with @p queues RX/TX queue pairs (RSS across them
 * when the device supports it), the configured MTU, MAC and promiscuity, and
 * starts it.
 */
void configure_port(uint16_t port_id, const PortConfig &port, uint16_t queues, rte_mempool *pool);

/** The port's MAC address. */
MacAddr port_mac(uint16_t port_id);

} // namespace flowhome
