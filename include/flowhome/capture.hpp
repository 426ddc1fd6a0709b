/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Packet capture to pcapng (console `capture start|stop`).
 *
 * Datapath: DatapathShared::capture points to the active CaptureTap or is
 * null. A worker loads it once per poll (one relaxed-acquire load per burst
 * when no capture runs) and, when set, offers the packets it received or is
 * about to send on the tap's port, or the packets it drops for the tap's
 * reason. The tap copies them (rte_pcapng_copy, into its own pool) onto a
 * bounded ring; a full ring or an empty pool loses the copy, counted, and
 * the original packet goes on untouched.
 *
 * Control: CaptureManager, one per node and shared by its front ends (the
 * terminal and the control socket: either stops what the other started),
 * opens the file, starts a writer thread that drains the ring into it,
 * publishes the tap, and on stop unpublishes it, waits an RCU grace period
 * (no worker still holds it), drains and closes. One capture at a time.
 * A capture writes at most its packet limit: at the limit the writer
 * unpublishes the tap itself (the workers stop copying) and the file is
 * complete; `capture stop` closes it.
 *
 * Threading: CaptureTap::offer_*() on workers (noexcept, no syscalls);
 * CaptureManager from any non-worker thread (a mutex serialises it).
 * Errors: CaptureManager::start()/stop() throw std::runtime_error with the
 * reason (unknown target, file, memory).
 */
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "flowhome/drop_reason.hpp"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

namespace flowhome {

class Node;

struct CaptureTap {
    enum class Kind : uint8_t { port, drop };
    Kind kind = Kind::port;
    uint16_t port = 0xFFFF;                        /**< Kind::port: the DPDK port id */
    DropReason reason = DropReason::eth_truncated; /**< Kind::drop */
    uint32_t snaplen = 2048;
    rte_ring *ring = nullptr;    /**< copies for the writer; multi-producer */
    rte_mempool *pool = nullptr; /**< where copies live */
    /* Written by every capturing worker: on a line of their own, away from
     * the fields above, which each worker reads for every packet it offers. */
    alignas(64) std::atomic<uint64_t> captured{0};
    std::atomic<uint64_t> lost{0}; /**< ring full or pool empty */

    /** Packets received on @p port_id (queue @p queue). */
    void offer_rx(uint16_t port_id, uint16_t queue, rte_mbuf *const *pkts, uint16_t n) noexcept;
    /** Packets about to be sent on @p port_id. */
    void offer_tx(uint16_t port_id, uint16_t queue, rte_mbuf *const *pkts, uint16_t n) noexcept;
    /** A packet about to be freed for @p why: received on @p port_id, or refused by it. */
    void offer_drop(DropReason why, const rte_mbuf *m, uint16_t port_id) noexcept;

private:
    void copy(const rte_mbuf *m, uint16_t port_id, uint16_t queue, bool out) noexcept;
};

/** Packets a capture writes when `capture start` names no limit. */
inline constexpr uint64_t kCaptureDefaultPackets = 1'000'000;
/** The largest limit `capture start` takes. */
inline constexpr uint64_t kCaptureMaxPackets = 1'000'000'000;

class CaptureManager {
public:
    explicit CaptureManager(Node &node);
    ~CaptureManager(); /**< stops a running capture */
    CaptureManager(const CaptureManager &) = delete;
    CaptureManager &operator=(const CaptureManager &) = delete;

    /**
     * Starts capturing @p target (a port name from the configuration, or a
     * drop reason name) into @p file (created or truncated); at most
     * @p max_packets (1..kCaptureMaxPackets) are written. Returns a
     * one-line description.
     */
    std::string start(const std::string &target, const std::string &file,
                      uint64_t max_packets = kCaptureDefaultPackets);
    /** Stops the capture (of @p target when not empty); returns what was written. */
    std::string stop(const std::string &target);
    /** "none" or what is being captured, with its counters. */
    std::string status() const;

private:
    struct Running;
    Node &node_;
    mutable std::mutex mu_;
    std::unique_ptr<Running> run_;
};

} // namespace flowhome
