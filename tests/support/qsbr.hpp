/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <catch2/catch.hpp>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

namespace flowhome::test {

/** An RCU QSBR variable for @p readers reader threads, freed with the test. */
struct Qsbr {
    rte_rcu_qsbr *v;
    explicit Qsbr(unsigned readers = 4)
    {
        v = static_cast<rte_rcu_qsbr *>(
            rte_zmalloc(nullptr, rte_rcu_qsbr_get_memsize(readers), RTE_CACHE_LINE_SIZE));
        REQUIRE(v != nullptr);
        REQUIRE(rte_rcu_qsbr_init(v, readers) == 0);
    }
    ~Qsbr() { rte_free(v); }
    Qsbr(const Qsbr &) = delete;
    Qsbr &operator=(const Qsbr &) = delete;
};

/** Reader 0 of @p q, online and silent until report(): a slot deleted
 *  meanwhile waits for it. Offline and unregistered with the test. */
struct SilentReader {
    rte_rcu_qsbr *v;
    explicit SilentReader(const Qsbr &q) : v(q.v)
    {
        REQUIRE(rte_rcu_qsbr_thread_register(v, 0) == 0);
        rte_rcu_qsbr_thread_online(v, 0);
    }
    void report() { rte_rcu_qsbr_quiescent(v, 0); }
    ~SilentReader()
    {
        rte_rcu_qsbr_thread_offline(v, 0);
        rte_rcu_qsbr_thread_unregister(v, 0);
    }
    SilentReader(const SilentReader &) = delete;
    SilentReader &operator=(const SilentReader &) = delete;
};

} // namespace flowhome::test
