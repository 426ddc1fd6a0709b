/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Readers of the sections that tune how a node runs rather than what it is:
 * table, backoff, gossip, console. Private to src/config.
 */
#pragma once

#include "flowhome/config.hpp"
#include "yaml_reader.hpp"

namespace flowhome::config_detail {

void read_table(const MapReader &root, TableConfig &t);
void read_backoff(const MapReader &root, BackoffConfig &b);
/** Reads `gossip`; checked against the ports, peers and table read before it. */
void read_gossip(const MapReader &root, NodeConfig &cfg);
void read_console(const MapReader &root, ConsoleConfig &con);

} // namespace flowhome::config_detail
