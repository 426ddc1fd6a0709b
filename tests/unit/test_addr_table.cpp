/* SPDX-License-Identifier: BSD-3-Clause */
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <utility>
#include <vector>

#include "flowhome/addr_table.hpp"

using namespace flowhome;

namespace {

/* Every size up to a few search steps past a cache line of addresses, keys
 * inserted in random order: each held key is found with its value, a key
 * next to one (the off-by-one a search gets wrong) and random ones are not,
 * and a second insert of a key changes nothing. */
template <typename Addr, typename MakeAddr> void check_against_map(MakeAddr make)
{
    std::mt19937_64 rng(7);
    for (unsigned n = 0; n <= 70; ++n) {
        AddrTable<Addr, unsigned> table;
        std::map<Addr, unsigned> want;
        std::vector<std::pair<uint64_t, uint64_t>> made;
        while (want.size() < n) {
            /* Odd x: make(x - 1, y), the key just below, is none of them. */
            const uint64_t x = rng() | 1, y = rng();
            const Addr a = make(x, y);
            if (want.emplace(a, static_cast<unsigned>(want.size())).second) {
                REQUIRE(table.insert(a, want.at(a)));
                made.emplace_back(x, y);
            }
        }
        REQUIRE(table.size() == n);
        for (const auto &[a, v] : want) {
            const unsigned *got = table.find(a);
            REQUIRE(got != nullptr);
            CHECK(*got == v);
            CHECK_FALSE(table.insert(a, v + 1000));
            CHECK(*table.find(a) == v);
        }
        for (const auto &[x, y] : made)
            CHECK(table.find(make(x - 1, y)) == nullptr);
        for (unsigned i = 0; i < 200; ++i)
            CHECK(table.find(make(rng() & ~uint64_t{1}, rng())) == nullptr);
        CHECK(table.size() == n);
    }
}

} // namespace

TEST_CASE("AddrTable finds every IPv4 address it holds and no other", "[addr_table]")
{
    check_against_map<uint32_t>([](uint64_t x, uint64_t) { return static_cast<uint32_t>(x); });
}

TEST_CASE("AddrTable finds every IPv6 address it holds and no other", "[addr_table]")
{
    /* Keys that differ in one word only, either one, as well as in both. */
    check_against_map<AddrWords6>([](uint64_t x, uint64_t y) {
        switch (y % 3) {
        case 0:
            return AddrWords6{x, 0x20010db8};
        case 1:
            return AddrWords6{0x20010db8, x};
        default:
            return AddrWords6{y, x};
        }
    });
}
