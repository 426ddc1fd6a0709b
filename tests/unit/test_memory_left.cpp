/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a table heap may take: MemAvailable and the cgroup v2 memory.max,
 * read from a fake /proc and /sys/fs/cgroup.
 */
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "flowhome/table_heap.hpp"

using flowhome::detail::available_memory;
namespace fs = std::filesystem;

namespace {

/* A directory holding proc/ and cgroup/, removed with the object. */
class FakeRoots {
public:
    FakeRoots()
    {
        std::string tmpl = (fs::temp_directory_path() / "fh_memleft.XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        try {
            fs::create_directories(dir_ / "proc" / "self");
            fs::create_directories(dir_ / "cgroup");
        } catch (...) {
            remove();
            throw;
        }
    }
    ~FakeRoots() { remove(); }
    FakeRoots(const FakeRoots &) = delete;
    FakeRoots &operator=(const FakeRoots &) = delete;

    std::string proc() const { return (dir_ / "proc").string(); }
    std::string cgroup() const { return (dir_ / "cgroup").string(); }

    void write(const fs::path &rel, const std::string &text) const
    {
        fs::create_directories((dir_ / rel).parent_path());
        std::ofstream(dir_ / rel) << text;
    }
    void meminfo(unsigned long long available_kb) const
    {
        write("proc/meminfo", "MemTotal:       25165824 kB\nMemFree:         1000000 kB\n"
                              "MemAvailable:   " +
                                  std::to_string(available_kb) + " kB\nBuffers: 1 kB\n");
    }
    /* This process in cgroup @p path, with its memory.max and memory.current. */
    void cgroup_v2(const std::string &path, const std::string &max,
                   const std::string &current) const
    {
        write("proc/self/cgroup", "0::" + path + "\n");
        write("cgroup" + path + "/memory.max", max + "\n");
        write("cgroup" + path + "/memory.current", current + "\n");
    }

private:
    void remove() noexcept
    {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path dir_;
};

} // namespace

TEST_CASE("MemAvailable bounds a table heap when no cgroup limits it", "[table_heap]")
{
    FakeRoots r;
    r.meminfo(2048);
    SECTION("no cgroup file") {}
    SECTION("a cgroup whose memory.max is \"max\"")
    {
        r.cgroup_v2("/fleet/flowhome.service", "max", "1048576");
    }
    SECTION("a memory.max that is not a number")
    {
        r.cgroup_v2("/x", "garbage", "0");
    }
    SECTION("the root cgroup, which has no memory.max")
    {
        r.write("proc/self/cgroup", "0::/\n");
    }
    const auto left = available_memory(r.proc(), r.cgroup());
    CHECK(left.bytes == 2048u << 10);
    CHECK(std::string(left.limit) == "MemAvailable");
}

TEST_CASE("a cgroup's memory.max bounds a table heap when it leaves less", "[table_heap]")
{
    FakeRoots r;
    r.meminfo(4u << 20); /* 4 GiB */
    const std::string cgroup = "the cgroup's memory.max";
    size_t want = 0;
    std::string want_limit;
    SECTION("room under the limit")
    {
        r.cgroup_v2("/fleet/flowhome.service", "1073741824", "268435456");
        want = size_t{768} << 20;
        want_limit = cgroup;
    }
    SECTION("a cgroup already over its limit leaves nothing")
    {
        r.cgroup_v2("/x", "1048576", "2097152");
        want = 0;
        want_limit = cgroup;
    }
    SECTION("a limit above MemAvailable leaves MemAvailable")
    {
        r.cgroup_v2("/x", "68719476736", "0");
        want = size_t{4} << 30;
        want_limit = "MemAvailable";
    }
    SECTION("cgroup v1 lines name controllers and are not read")
    {
        r.write("proc/self/cgroup", "12:memory:/x\n");
        r.write("cgroup/x/memory.max", "1048576\n");
        r.write("cgroup/x/memory.current", "0\n");
        want = size_t{4} << 30;
        want_limit = "MemAvailable";
    }
    const auto left = available_memory(r.proc(), r.cgroup());
    CHECK(left.bytes == want);
    CHECK(std::string(left.limit) == want_limit);
}

TEST_CASE("nothing readable is no limit", "[table_heap]")
{
    FakeRoots r;
    const auto left = available_memory(r.proc(), r.cgroup());
    CHECK(left.bytes == SIZE_MAX);
    CHECK(std::string(left.limit).empty());
}

TEST_CASE("this machine's own limits read as some memory", "[table_heap]")
{
    /* The defaults read the real /proc and /sys/fs/cgroup: a running
     * process has memory left, and one of the two limits says so. Linux has
     * reported MemAvailable since 3.14. */
    const auto left = available_memory();
    CHECK(left.bytes > 0);
    CHECK(left.bytes != SIZE_MAX);
    const std::string limit = left.limit;
    CHECK((limit == "MemAvailable" || limit == "the cgroup's memory.max"));
}
