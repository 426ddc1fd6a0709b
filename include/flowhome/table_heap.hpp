/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The memory the ownership table lives in.
 *
 * A lookup in a table of millions of flows touches a bucket and a key slot
 * that no cache holds; on 4 KiB pages each of them also misses the TLB, and
 * that page walk costs as much as the cache miss. On 2 MB hugepages the EAL
 * heap avoids it. Without hugepages (--no-huge: a VM, a container, a laptop)
 * the EAL heap is shared memory on 4 KiB pages, which the kernel never backs
 * with huge pages; private anonymous memory advised with MADV_HUGEPAGE is
 * backed with 2 MB pages on first touch. TableHeap maps such memory and
 * gives it to DPDK as an external malloc heap, so rte_hash allocates the
 * table there through its socket id.
 *
 * DPDK writes the whole heap when it is added (rte_malloc_heap_memory_add),
 * so all of its pages are taken at start. A heap larger than the memory
 * left (MemAvailable, the cgroup's memory.max) is refused with an error
 * before it is mapped, instead of the process being killed while DPDK
 * writes it; the mapping is not MAP_NORESERVE, so the commit limit applies
 * too. Nothing in the heap is ever DMA'd, so
 * its pages have no IOVA.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "flowhome/config.hpp"

namespace flowhome {

class TableHeap {
public:
    /** The heap @p policy names; @p bytes bounds what the table takes.
     * Throws std::runtime_error when `thp` is asked for and cannot be had. */
    TableHeap(TableMemory policy, const std::string &name, size_t bytes);
    ~TableHeap();
    TableHeap(const TableHeap &) = delete;
    TableHeap &operator=(const TableHeap &) = delete;

    /** The socket id to create the table on. */
    int socket_id() const noexcept { return socket_; }
    /** True when the table lives in transparent huge pages. */
    bool transparent() const noexcept { return base_ != nullptr; }
    /** Bytes allocated from this heap (the EAL heap: all of its socket's). */
    size_t allocated_bytes() const noexcept;
    /** Bytes allocated from the DPDK heap of @p socket (an EAL socket or an
     * external heap's); 0 for an unknown one. */
    static size_t allocated_on(int socket) noexcept;
    /** Bytes of the mapping the kernel backs with 2 MB pages; reads
     * /proc/self/smaps, so not for a hot path. 0 on the EAL heap. */
    size_t huge_bytes() const;
    /** One line for the console and logs. */
    std::string describe() const;

    /** Whether the kernel gives huge pages to memory advised with
     * MADV_HUGEPAGE (/sys/kernel/mm/transparent_hugepage/enabled). */
    static bool transparent_huge_pages_enabled();

private:
    std::string name_;
    int socket_;
    void *map_ = nullptr; /**< the whole mapping, for munmap */
    size_t map_len_ = 0;
    void *base_ = nullptr; /**< 2 MB aligned start given to the heap */
    size_t len_ = 0;
};

namespace detail {

/** What is left for this process to take, and which limit says so. */
struct MemoryLeft {
    size_t bytes = SIZE_MAX; /**< SIZE_MAX: no limit could be read */
    const char *limit = "";  /**< "MemAvailable" or "the cgroup's memory.max" */
};

/**
 * The smaller of MemAvailable (@p proc/meminfo) and the room under the
 * memory.max of this process's cgroup v2 (@p proc/self/cgroup names it,
 * under @p cgroup_root; "max" is no limit). The roots are parameters for the
 * tests.
 */
MemoryLeft available_memory(const std::string &proc = "/proc",
                            const std::string &cgroup_root = "/sys/fs/cgroup");

} // namespace detail
} // namespace flowhome
