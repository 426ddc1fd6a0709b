/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Prometheus text: a HELP and TYPE line per family that has samples,
 * whole values for counters, and seconds for the families sampled in
 * microseconds.
 */
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "flowhome/metrics.hpp"

using namespace flowhome;

TEST_CASE("the Prometheus text gives families sampled in microseconds in seconds", "[cli][metrics]")
{
    const std::vector<MetricSample> samples = {
        {"flowhome_gossip_repair_retry_seconds", "", 50'000},
        {"flowhome_gossip_repair_round_trip_seconds", "", 1'100},
        {"flowhome_table_reclaim_waits_total", "", 7},
        {"flowhome_table_flows", "family=\"ipv4\"", 123'456'789},
    };
    const std::string t = prometheus_text(samples);
    INFO(t);
    CHECK(t.find("# TYPE flowhome_gossip_repair_retry_seconds gauge\n") != std::string::npos);
    CHECK(t.find("\nflowhome_gossip_repair_retry_seconds{} 0.05\n") != std::string::npos);
    CHECK(t.find("\nflowhome_gossip_repair_round_trip_seconds{} 0.0011\n") != std::string::npos);
    CHECK(t.find("\nflowhome_table_reclaim_waits_total{} 7\n") != std::string::npos);
    CHECK(t.find("\nflowhome_table_flows{family=\"ipv4\"} 123456789\n") != std::string::npos);
    /* No family without samples. */
    CHECK(t.find("flowhome_drops_total") == std::string::npos);
}

TEST_CASE("a telemetry dictionary sums workers, joins labels, and says what did not fit",
          "[cli][metrics]")
{
    const std::string_view drops[] = {"flowhome_drops_total"};
    const std::string_view peers[] = {"flowhome_peer_state"};
    const std::string_view frames[] = {"flowhome_gossip_frames_total"};

    SECTION("per-worker samples are summed; the family's name leads unless stripped")
    {
        const std::vector<MetricSample> s = {
            {"flowhome_drops_total", "worker=\"1\",reason=\"hop_limit\"", 2},
            {"flowhome_drops_total", "worker=\"2\",reason=\"hop_limit\"", 3},
            {"flowhome_drops_total", "worker=\"2\",reason=\"no_headroom\"", 1},
            {"flowhome_gossip_frames_total", "direction=\"rx\",kind=\"claim\"", 9},
        };
        CHECK(telemetry_entries(s, drops, true, 256) ==
              std::vector<TelemetryEntry>{{"hop_limit", 5}, {"no_headroom", 1}});
        CHECK(telemetry_entries(s, frames, false, 256) ==
              std::vector<TelemetryEntry>{{"gossip_frames_total/rx/claim", 9}});
    }
    SECTION("a name is cut to 63 characters")
    {
        const std::vector<MetricSample> s = {
            {"flowhome_peer_state", "peer=\"" + std::string(80, 'p') + "\"", 1}};
        const auto e = telemetry_entries(s, peers, true, 256);
        REQUIRE(e.size() == 1);
        CHECK(e[0].first == std::string(63, 'p'));
    }
    SECTION("past the dictionary's room, the last entry counts what was left out")
    {
        const size_t n = GENERATE(255, 256, 257, 300);
        std::vector<MetricSample> s;
        for (size_t i = 0; i < n; ++i)
            s.push_back({"flowhome_peer_state", fmt::format("peer=\"{:04}\"", i + 1), 1});
        const auto e = telemetry_entries(s, peers, true, 256);
        INFO(n << " peers");
        if (n <= 256) {
            CHECK(e.size() == n);
            CHECK(e.back().first == fmt::format("{:04}", n));
        } else {
            REQUIRE(e.size() == 256);
            CHECK(e[254].first == "0255");
            CHECK(e.back() == TelemetryEntry{"truncated", n - 255});
        }
    }
}

TEST_CASE("every worker loop counter has its family declared, once, as a counter", "[cli][metrics]")
{
    /* A family without its HELP and TYPE would be a sample no scraper
     * could read as a counter. */
    for (const WorkerLoopCounterInfo &c : worker_loop_counters()) {
        INFO(c.name);
        int declared = 0;
        for (const MetricFamilyInfo &f : metric_families())
            if (f.name == c.family) {
                ++declared;
                CHECK(f.type == MetricType::counter);
            }
        CHECK(declared == 1);
    }
    CHECK_FALSE(worker_loop_counters().empty());
}
