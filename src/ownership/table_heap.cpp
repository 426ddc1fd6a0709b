/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/table_heap.hpp"

#include <sys/mman.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>

namespace flowhome {
namespace {

/* The PMD-size huge page of x86-64 and of arm64 with 4 KiB base pages. */
constexpr size_t kHugePage = size_t{2} << 20;
constexpr const char *kThpEnabled = "/sys/kernel/mm/transparent_hugepage/enabled";

/* The first number in @p path, or SIZE_MAX when it cannot be read ("max"). */
size_t read_bytes(const std::string &path)
{
    std::ifstream f(path);
    unsigned long long v = 0;
    return f >> v ? static_cast<size_t>(v) : SIZE_MAX;
}

} // namespace

namespace detail {

MemoryLeft available_memory(const std::string &proc, const std::string &cgroup_root)
{
    MemoryLeft left;
    std::ifstream meminfo(proc + "/meminfo");
    std::string line;
    while (std::getline(meminfo, line)) {
        unsigned long long kb = 0;
        if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1) {
            left = {static_cast<size_t>(kb) << 10, "MemAvailable"};
            break;
        }
    }
    /* cgroup v2: the one line "0::<path>"; v1 lines name their controllers. */
    std::ifstream cg(proc + "/self/cgroup");
    while (std::getline(cg, line)) {
        if (!line.starts_with("0::"))
            continue;
        const std::string dir = cgroup_root + line.substr(3);
        const size_t max = read_bytes(dir + "/memory.max");
        const size_t cur = read_bytes(dir + "/memory.current");
        if (max != SIZE_MAX && cur != SIZE_MAX) {
            const size_t room = max > cur ? max - cur : 0;
            if (room < left.bytes)
                left = {room, "the cgroup's memory.max"};
        }
    }
    return left;
}

} // namespace detail

bool TableHeap::transparent_huge_pages_enabled()
{
    /* "always [madvise] never": the selected mode is bracketed. */
    std::ifstream f(kThpEnabled);
    std::string line;
    if (!std::getline(f, line))
        return false;
    return line.find("[always]") != std::string::npos ||
           line.find("[madvise]") != std::string::npos;
}

TableHeap::TableHeap(TableMemory policy, const std::string &name, size_t bytes)
    : name_(name), socket_(static_cast<int>(rte_socket_id()))
{
    bool want = false;
    switch (policy) {
    case TableMemory::eal:
        break;
    case TableMemory::automatic:
        want = rte_eal_has_hugepages() == 0 && transparent_huge_pages_enabled();
        break;
    case TableMemory::thp:
        if (!transparent_huge_pages_enabled())
            throw std::runtime_error(fmt::format(
                "table.memory: thp, but the kernel gives no transparent huge pages ({} does not "
                "select always or madvise)",
                kThpEnabled));
        want = true;
        break;
    }
    if (!want)
        return;

    len_ = RTE_ALIGN_CEIL(bytes, kHugePage);
    map_len_ = len_ + kHugePage; /* room to align the start to 2 MB */
    /* The heap's memory is written whole when it is given to DPDK: a heap
     * larger than what is left would be an OOM kill during start-up. */
    if (const detail::MemoryLeft left = detail::available_memory(); len_ > left.bytes)
        throw std::runtime_error(
            fmt::format("cannot map {} MB for the ownership table: {} MB available ({})",
                        len_ >> 20, left.bytes >> 20, left.limit));
    map_ = mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        throw std::runtime_error(fmt::format("cannot map {} MB for the ownership table: {}",
                                             map_len_ >> 20, std::strerror(errno)));
    }
    /* Advised before any page is touched: each 2 MB extent is then faulted
     * in as one huge page. */
    if (madvise(map_, map_len_, MADV_HUGEPAGE) != 0) {
        const int err = errno;
        munmap(map_, map_len_);
        map_ = nullptr;
        throw std::runtime_error(
            fmt::format("madvise(MADV_HUGEPAGE) on the table memory: {}", std::strerror(err)));
    }
    base_ = reinterpret_cast<void *>(RTE_ALIGN_CEIL(reinterpret_cast<uintptr_t>(map_), kHugePage));

    auto fail = [&](const char *what) {
        const std::string msg =
            fmt::format("cannot {} the table heap {}: {}", what, name_, rte_strerror(rte_errno));
        munmap(map_, map_len_);
        map_ = base_ = nullptr;
        throw std::runtime_error(msg);
    };
    if (rte_malloc_heap_create(name_.c_str()) != 0)
        fail("create");
    if (rte_malloc_heap_memory_add(name_.c_str(), base_, len_, nullptr, 0, kHugePage) != 0) {
        rte_malloc_heap_destroy(name_.c_str());
        fail("add memory to");
    }
    socket_ = rte_malloc_heap_get_socket(name_.c_str());
    if (socket_ < 0) {
        rte_malloc_heap_memory_remove(name_.c_str(), base_, len_);
        rte_malloc_heap_destroy(name_.c_str());
        fail("find");
    }
}

TableHeap::~TableHeap()
{
    if (base_ == nullptr)
        return;
    /* Both fail only while allocations remain: then the memory stays mapped
     * rather than pulled from under them. */
    if (rte_malloc_heap_memory_remove(name_.c_str(), base_, len_) != 0 ||
        rte_malloc_heap_destroy(name_.c_str()) != 0) {
        fmt::print(stderr,
                   "flowhome: table heap {} destroyed with {} bytes still allocated; its {} MB "
                   "stay mapped\n",
                   name_, allocated_bytes(), map_len_ >> 20);
        return;
    }
    munmap(map_, map_len_);
}

size_t TableHeap::allocated_on(int socket) noexcept
{
    rte_malloc_socket_stats s{};
    return rte_malloc_get_socket_stats(socket, &s) == 0 ? s.heap_allocsz_bytes : 0;
}

size_t TableHeap::allocated_bytes() const noexcept
{
    return allocated_on(socket_);
}

size_t TableHeap::huge_bytes() const
{
    if (base_ == nullptr)
        return 0;
    /* Sum AnonHugePages over the mappings that overlap ours: madvise and
     * the kernel may split or merge the area into several. */
    const auto lo = reinterpret_cast<uintptr_t>(map_);
    const uintptr_t hi = lo + map_len_;
    std::ifstream f("/proc/self/smaps");
    std::string line;
    bool inside = false;
    size_t kb = 0;
    while (std::getline(f, line)) {
        uintptr_t start = 0, end = 0;
        /* A mapping's first line starts "start-end"; its fields start
         * with a name and a colon. */
        if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2) {
            inside = start < hi && end > lo;
            continue;
        }
        size_t v = 0;
        if (inside && std::sscanf(line.c_str(), "AnonHugePages: %zu kB", &v) == 1)
            kb += v;
    }
    return kb << 10;
}

std::string TableHeap::describe() const
{
    if (base_ == nullptr)
        return fmt::format("EAL heap ({})",
                           rte_eal_has_hugepages() ? "hugepages" : "4 KiB pages, --no-huge");
    return fmt::format("transparent huge pages, {} of {} MB taken, {} MB in 2 MB pages",
                       allocated_bytes() >> 20, len_ >> 20, huge_bytes() >> 20);
}

} // namespace flowhome
