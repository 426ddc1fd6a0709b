/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <functional>

namespace flowhome::test {

/** Runs @p fn after the tests, before rte_eal_cleanup() (for DPDK objects in statics). */
void before_eal_cleanup(std::function<void()> fn);

} // namespace flowhome::test
