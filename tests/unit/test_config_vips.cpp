/* SPDX-License-Identifier: BSD-3-Clause */
/* The vips section: the overlap rule and what checking it costs. */
#include "config_test_util.hpp"

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace {

/* kMinimal up to its vips section: nine lines, so vips[i] is on line 10 + i. */
const std::string kHead = kMinimal.substr(0, kMinimal.find("vips:")) + "vips:\n";

struct Vip {
    int address;            /* 198.51.100.<address> */
    const char *protocol;   /* nullptr: not written (any) */
    std::vector<int> ports; /* empty: not written (every port) */
};

std::string vip_line(const Vip &v)
{
    std::string line = fmt::format("  - {{address: 198.51.100.{}", v.address);
    if (v.protocol)
        line += fmt::format(", protocol: {}", v.protocol);
    if (!v.ports.empty())
        line += fmt::format(", ports: [{}]", fmt::join(v.ports, ", "));
    return line + "}\n";
}

/* The rule as docs/configuration.md states it, pair by pair. */
bool overlap(const Vip &a, const Vip &b)
{
    const std::string pa = a.protocol ? a.protocol : "any", pb = b.protocol ? b.protocol : "any";
    if (a.address != b.address || (pa != pb && pa != "any" && pb != "any"))
        return false;
    if (a.ports.empty() || b.ports.empty())
        return true;
    for (const int x : a.ports)
        for (const int y : b.ports)
            if (x == y)
                return true;
    return false;
}

/* The fastest of three runs of @p f: other processes (the suite runs tests
 * in parallel) only ever slow a run down. */
template <typename F> double seconds(F &&f)
{
    double best = 0;
    for (int run = 0; run < 3; ++run) {
        const auto start = std::chrono::steady_clock::now();
        f();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = run == 0 ? s : std::min(best, s);
    }
    return best;
}

} // namespace

TEST_CASE("a VIP overlapping several earlier ones names the first", "[config]")
{
    check_error(kHead + "  - {address: 198.51.100.10, protocol: tcp, ports: [80]}\n"
                        "  - {address: 198.51.100.10, protocol: udp, ports: [80]}\n"
                        "  - {address: 198.51.100.10, protocol: tcp, ports: [443]}\n"
                        "  - {address: 198.51.100.10, ports: [443, 80]}\n",
                13, 15, "vips[3].address",
                "overlaps vips[0]: same address 198.51.100.10, and their protocols and ports "
                "intersect");
    check_error(kHead + "  - {address: 198.51.100.10, protocol: udp, ports: [53]}\n"
                        "  - {address: 198.51.100.11}\n"
                        "  - {address: 198.51.100.10, protocol: tcp}\n"
                        "  - {address: 198.51.100.10, ports: [80]}\n",
                13, 15, "vips[3].address",
                "overlaps vips[2]: same address 198.51.100.10, and their protocols and ports "
                "intersect");
}

TEST_CASE("a VIP is not a peer's address", "[config]")
{
    // A redirect to the peer would go where the router sends VIP traffic.
    check_error(kHead + "  - address: 198.51.100.10\n"
                        "  - {address: 192.0.2.2, protocol: udp, ports: [53]}\n"
                        "domains:\n"
                        "  - {name: dc1, next_hop_mac: \"02:00:00:00:00:fe\"}\n"
                        "peers:\n"
                        "  - {id: 2, address: 192.0.2.2, domain: dc1}\n",
                15, 22, "peers[0].address",
                "192.0.2.2 is also vips[1].address: redirects to this peer would be sent to an "
                "address the fleet advertises");
}

TEST_CASE("the overlap check agrees with the rule on random VIP lists", "[config]")
{
    std::mt19937 rng(8);
    const char *protocols[] = {nullptr, "tcp", "udp", "any"};
    const int ports[] = {53, 80, 443};
    for (int round = 0; round < 400; ++round) {
        std::vector<Vip> vips(1 + rng() % 5);
        for (Vip &v : vips) {
            v.address = 10 + static_cast<int>(rng() % 2);
            v.protocol = protocols[rng() % 4];
            for (const int p : ports)
                if (rng() % 3 == 0)
                    v.ports.push_back(p);
        }
        std::string text = kHead;
        for (const Vip &v : vips)
            text += vip_line(v);
        INFO(text);
        std::string expected;
        for (size_t i = 0; i < vips.size() && expected.empty(); ++i)
            for (size_t j = 0; j < i && expected.empty(); ++j)
                if (overlap(vips[j], vips[i]))
                    expected = fmt::format("vips[{}].address: overlaps vips[{}]", i, j);
        if (expected.empty()) {
            CHECK(load_config_text(text, "t.yaml").vips.size() == vips.size());
        } else {
            const ConfigError e = expect_error(text);
            CHECK(fmt::format("{}: {}", e.key(), e.message()).rfind(expected, 0) == 0);
        }
    }
}

TEST_CASE("checking VIPs takes time in proportion to the file", "[config]")
{
    // 30000 VIPs on one address, a port each, and a VIP of every port on
    // another. Compared pair by pair they took over ten times as long to check
    // as yaml-cpp took to parse the text (80 times under ASan); grouped by
    // address and port, under twice as long (three times under ASan).
    std::string text = kHead + "  - address: 198.51.100.10\n    ports: [1";
    for (int p = 2; p <= 65535; ++p)
        text += fmt::format(",{}", p);
    text += "]\n";
    const int n = 30000;
    for (int p = 1; p <= n; ++p)
        text += fmt::format("  - {{address: 198.51.100.11, ports: [{}]}}\n", p);

    const double parse = seconds([&] { (void)YAML::Load(text); });
    size_t loaded = 0;
    const double load = seconds([&] { loaded = load_config_text(text, "t.yaml").vips.size(); });
    INFO("parsing took " << parse << " s, loading " << load << " s");
    CHECK(loaded == n + 1);
    CHECK(load < 8 * parse);
}
