/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Prometheus text: a HELP and TYPE line per family that has samples,
 * whole values for counters, and seconds for the families sampled in
 * microseconds.
 */
#include <string>
#include <vector>

#include <catch2/catch.hpp>

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
