/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The EAL command line a node needs, derived from its configuration:
 * lcores, memory, file prefix, and one --vdev / -a per port.
 * Pure; callable anywhere; no EAL needed.
 */
#pragma once

#include <string>
#include <vector>

#include "flowhome/config.hpp"

namespace flowhome {

/**
 * argv for rte_eal_init(), program name first. @p extra (from the command
 * line after "--") is appended after the configuration's own eal.extra.
 * When either gives an lcore option (-l, -c, --lcores, --main-lcore), no
 * lcore list is derived; when @p extra gives --file-prefix, the
 * configuration's prefix is not used. Options are recognised in every form
 * the EAL reads (reserved_eal_option(): "-l0-3", "--lcore=...").
 */
std::vector<std::string> eal_arguments(const NodeConfig &cfg, const std::string &program,
                                       const std::vector<std::string> &extra = {});

} // namespace flowhome
