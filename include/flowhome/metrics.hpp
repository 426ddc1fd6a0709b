/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * One snapshot of every counter of a node, the single source of the
 * console's `show stats`, the Prometheus text and the DPDK telemetry
 * commands, so that they agree. Names, labels and units: docs/console.md.
 *
 * Values are absolute and monotonic (counters) or current (gauges); the
 * console's `clear stats` subtracts a baseline of its own and never writes
 * a counter.
 *
 * Threading: collect_metrics() reads atomics and ethdev statistics only;
 * any non-worker thread (main lcore, socket thread, telemetry thread).
 * Errors: none thrown beyond std::bad_alloc.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowhome/worker.hpp"

namespace flowhome {

class Node;
class GossipEngine;
class GossipTransport;
class LogRelay;

enum class MetricType : uint8_t { counter, gauge };

struct MetricSample {
    std::string_view family; /**< e.g. "flowhome_port_rx_packets_total" */
    std::string labels;      /**< Prometheus label set without braces: port="uplink" */
    uint64_t value = 0;

    /** family{labels}: the key under which a baseline is kept. */
    std::string key() const;
};

struct MetricFamilyInfo {
    std::string_view name;
    MetricType type;
    std::string_view help;
    /** The samples' values are this many to the family's unit (a _seconds
     *  family sampled in microseconds: 1000000); the Prometheus text
     *  divides them, the snapshot keeps them whole. */
    uint32_t per_unit = 1;
};

/** Every family collect_metrics() emits, in output order. */
const std::vector<MetricFamilyInfo> &metric_families();

std::vector<MetricSample> collect_metrics(Node &node);

/** Prometheus text exposition format 0.0.4 (HELP and TYPE lines per family). */
std::string prometheus_text(const std::vector<MetricSample> &samples);

/** One entry of a telemetry dictionary: its name and value. */
using TelemetryEntry = std::pair<std::string, uint64_t>;

/**
 * The entries of the telemetry dictionary of @p families: their samples
 * keyed by label values ('/'-joined, after the family's name without
 * "flowhome_" unless @p strip_family; cut to 63 characters, a telemetry
 * name's limit), per-worker samples summed, in key order. More than
 * @p room keys give room - 1 of them and a last entry "truncated" with the
 * number left out.
 */
std::vector<TelemetryEntry> telemetry_entries(const std::vector<MetricSample> &samples,
                                              std::span<const std::string_view> families,
                                              bool strip_family, size_t room);

/**
 * Registers the /flowhome/... telemetry commands (once per process) and
 * points them at @p node; nullptr detaches them (they then answer with an
 * empty dictionary). Main lcore, after rte_eal_init().
 */
void attach_telemetry(Node *node);

/** A per-worker counter: its label value (as `show stats worker` prints it) and field. */
struct WorkerCounterInfo {
    std::string_view name;
    Counter WorkerStats::*field;
};

/** Every per-worker packet counter, in display order. */
std::span<const WorkerCounterInfo> worker_counters() noexcept;

/** A counter of a worker's poll loop rather than of its packets: its name
 *  (as `show stats worker` prints it), its metric family and its field. */
struct WorkerLoopCounterInfo {
    std::string_view name;
    std::string_view family;
    Counter WorkerStats::*field;
};

/** The poll loop's counters (idle sleeps, busy cycles, busy polls), in
 *  display order, after the packet counters and the drops. */
std::span<const WorkerLoopCounterInfo> worker_loop_counters() noexcept;

/** A gossip counter: its event name (as `show stats gossip` prints it) and the counter. */
struct GossipCounterInfo {
    std::string_view name;
    const Counter *counter;
};

/** Every gossip event counter of @p engine, then of @p transport and of the
 *  membership @p log (none when nullptr), in the report's order: what the
 *  report, the console and the metrics list, beside the frames, records
 *  and bytes in and out. */
std::vector<GossipCounterInfo>
gossip_counters(const GossipEngine &engine, const GossipTransport *transport, const LogRelay *log);

} // namespace flowhome
