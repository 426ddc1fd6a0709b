/* SPDX-License-Identifier: BSD-3-Clause */
#include <catch2/catch.hpp>

#include <map>
#include <new>
#include <random>
#include <utility>
#include <vector>

#include "flowhome/addr_table.hpp"

using namespace flowhome;

namespace {

/* A key's raw words: the reference's own order and equality, apart from
 * the ones under test. */
using Raw = std::pair<uint64_t, uint64_t>;
Raw raw_of(uint32_t a)
{
    return {a, 0};
}
Raw raw_of(AddrWords6 a)
{
    return {a.hi, a.lo};
}

/*
 * Every size up to a few search steps past a cache line of addresses, keys
 * inserted in random order: each held key is found with its value, the key
 * just below each one and random ones are not, and a second insert of a
 * key changes nothing. make(x, y) builds a key: with x odd, make(x - 1, y)
 * is none of the keys made so.
 */
template <typename Addr, typename Make> void check_against_map(Make make)
{
    std::mt19937_64 rng(7);
    for (unsigned n = 0; n <= 70; ++n) {
        AddrTable<Addr, unsigned> table;
        std::map<Raw, std::pair<Addr, unsigned>> want;
        std::vector<Raw> made;
        while (want.size() < n) {
            const uint64_t x = rng() | 1;
            const uint64_t y = rng();
            const Addr a = make(x, y);
            const auto value = static_cast<unsigned>(want.size());
            if (want.emplace(raw_of(a), std::pair{a, value}).second) {
                REQUIRE(table.insert(a, value));
                made.emplace_back(x, y);
            }
        }
        REQUIRE(table.size() == n);
        for (const auto &[raw, held] : want) {
            const auto &[a, v] = held;
            const unsigned *got = table.find(a);
            REQUIRE(got != nullptr);
            CHECK(*got == v);
            CHECK_FALSE(table.insert(a, v + 1000));
            CHECK(*table.find(a) == v);
        }
        for (const auto &[x, y] : made)
            CHECK(table.find(make(x - 1, y)) == nullptr);
        for (unsigned i = 0; i < 200; ++i) {
            const uint64_t x = rng() & ~uint64_t{1};
            const uint64_t y = rng();
            CHECK(table.find(make(x, y)) == nullptr);
        }
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
    /* Keys that differ in the low word only, in the high word only, and in both. */
    check_against_map<AddrWords6>([](uint64_t x, uint64_t y) {
        switch (y % 3) {
        case 0:
            return AddrWords6{0x20010db8, x};
        case 1:
            return AddrWords6{x, 0x20010db8};
        default:
            return AddrWords6{y, x};
        }
    });
}

TEST_CASE("AddrWords6 orders addresses as one 128-bit word", "[addr_table]")
{
    std::mt19937_64 rng(11);
    for (unsigned i = 0; i < 10000; ++i) {
        /* Words often equal, so that the low word decides. */
        const AddrWords6 a{rng() % 4, rng() % 4};
        const AddrWords6 b{rng() % 4, rng() % 4};
        const bool less = a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo;
        CHECK((a < b) == less);
        CHECK((a == b) == (a.hi == b.hi && a.lo == b.lo));
        CHECK((!(a < b) && !(b < a)) == (a == b));
    }
}

namespace {

/* An address whose copy throws while `fail` is set: the second vector's
 * insert in AddrTable::insert fails as an allocation could. */
struct FragileAddr {
    static inline bool fail = false;
    unsigned v = 0;

    explicit FragileAddr(unsigned x) : v(x) {}
    FragileAddr(const FragileAddr &o) : v(o.v)
    {
        if (fail)
            throw std::bad_alloc();
    }
    FragileAddr &operator=(const FragileAddr &) = default;
    friend bool operator<(const FragileAddr &a, const FragileAddr &b) { return a.v < b.v; }
    friend bool operator==(const FragileAddr &a, const FragileAddr &b) { return a.v == b.v; }
};

} // namespace

TEST_CASE("AddrTable keeps its addresses and values paired when an insert fails", "[addr_table]")
{
    AddrTable<FragileAddr, unsigned> table;
    for (const unsigned a : {10u, 30u, 50u})
        REQUIRE(table.insert(FragileAddr(a), a + 1));
    /* Between two held addresses: a value left behind would shift the
     * values of every address after it. */
    FragileAddr::fail = true;
    CHECK_THROWS_AS(table.insert(FragileAddr(20), 21), std::bad_alloc);
    FragileAddr::fail = false;
    CHECK(table.size() == 3);
    for (const unsigned a : {10u, 30u, 50u}) {
        const unsigned *v = table.find(FragileAddr(a));
        REQUIRE(v != nullptr);
        CHECK(*v == a + 1);
    }
    CHECK(table.find(FragileAddr(20)) == nullptr);
    /* And the table takes the address once it can. */
    REQUIRE(table.insert(FragileAddr(20), 21));
    CHECK(*table.find(FragileAddr(20)) == 21);
    CHECK(*table.find(FragileAddr(30)) == 31);
}
