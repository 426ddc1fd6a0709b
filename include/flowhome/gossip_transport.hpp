/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Gossip frames on the wire: UDP to a multicast group (or a copy to every
 * peer, for networks without multicast), sent on the control lcore's own TX
 * queue of the wire port. Received frames reach the control lcore either on
 * its own RX queue, where an rte_flow rule steers them, or through a ring
 * the workers hand them to (software hand-off) on ports without rte_flow.
 *
 * Threading: GossipTransport on the control lcore only (constructed and
 * destroyed on the main lcore, with the control lcore stopped); its link
 * callback runs on the EAL's interrupt thread; gossip_match() on any
 * worker. Errors: the constructor throws std::runtime_error; send() and
 * poll() are noexcept and count their failures.
 */
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "flowhome/group_report.hpp"
#include "flowhome/packet.hpp"
#include "flowhome/stats.hpp"
#include "flowhome/types.hpp"

struct rte_mempool;
struct rte_ring;
struct rte_mbuf;

namespace flowhome {

/** What a worker needs to recognise a gossip frame. */
struct GossipMatch {
    bool enabled = false;
    bool unicast = false; /**< frames come to our own address, not to the group */
    uint16_t udp_port = 0;
    IpAddr group;                 /**< multicast destination */
    std::optional<IpAddr> local4; /**< our addresses (unicast gossip) */
    std::optional<IpAddr> local6;
};

/** True when the parsed packet is a whole UDP datagram to the gossip port,
 *  in the gossip's family, for the group (multicast gossip) or for our own
 *  address (unicast gossip): what the rte_flow rule steers where a NIC
 *  has one. */
bool gossip_match(const uint8_t *frame, const ParsedPacket &p, const GossipMatch &m) noexcept;

struct GossipTransportStats {
    Counter tx_frames;
    Counter tx_bytes;
    Counter tx_no_mbuf;
    Counter tx_queue_full;
    Counter rx_frames;
    Counter rx_not_gossip; /**< steered or handed off, but not a gossip datagram */
    Counter rx_own;        /**< our own frames, looped back by the port */
    Counter group_reports; /**< IGMPv3 / MLDv2 membership reports sent */
};

class GossipTransport {
public:
    struct Destination {
        IpAddr address;
        MacAddr mac;
    };
    struct Params {
        uint16_t port_id = 0;
        uint16_t tx_queue = 0;
        /** When the port has no TX queue to spare: worker 0 sends what this ring holds. */
        rte_ring *tx_ring = nullptr;
        /** The control lcore's RX queue, when rte_flow steers gossip to it. */
        std::optional<uint16_t> rx_queue;
        /** The workers' hand-off ring (mbuf pointers), otherwise. */
        rte_ring *handoff = nullptr;
        rte_mempool *pool = nullptr;
        MacAddr src_mac;
        IpAddr src; /**< our wire address, of the group's family */
        IpAddr group;
        uint16_t udp_port = 7471;
        uint8_t ttl = 1;
        /** Non-empty: unicast a copy to each instead of the group. */
        std::vector<Destination> unicast;
        /** Multicast: seconds between membership reports of the group
         *  after the join (group_report.hpp); 0: no reports at all. */
        uint32_t report_interval_s = 0;
    };

    explicit GossipTransport(const Params &params);
    ~GossipTransport();
    GossipTransport(const GossipTransport &) = delete;
    GossipTransport &operator=(const GossipTransport &) = delete;

    /** Sends one frame (to the group, or a copy to each unicast destination). */
    bool send(std::span<const uint8_t> frame) noexcept;

    /**
     * Sends the group's membership reports due at @p now_us (a monotonic
     * clock): the join once the port's link is up (read every 100 ms) and
     * once more within a second, then the current state every
     * report_interval_s; the join again whenever the link comes back up,
     * also after a flap too short for the 100 ms reads where the device
     * raises link interrupts (any of them since the last read: the link was
     * down, or changed, in between; an event brings the read forward, once
     * in 100 ms). A report that finds no mbuf or no room
     * is counted and tried again 100 ms later. Nothing with unicast gossip,
     * reports off, or a group that is not reportable(). Returns the reports
     * sent.
     */
    unsigned report_tick(uint64_t now_us) noexcept;
    /** Sends the leave, twice, if the group was joined (best effort: the
     *  node is stopping); the next report_tick() joins again. */
    void report_leave() noexcept;

    /**
     * Receives what is waiting and calls fn(std::span<const std::span<const
     * uint8_t>> payloads) with the gossip datagrams, in the order they came,
     * as one burst (or more: a second datagram in several mbufs begins a
     * new one, since each is read into the one scratch buffer). Returns how
     * many frames it took off the queue, delivered or not (its own, and
     * what is not gossip, are counted and freed): work either way, for the
     * control lcore's backoff, which must not sleep while they keep coming.
     */
    template <typename Fn> unsigned poll(Fn &&fn) noexcept;

    const GossipTransportStats &stats() const noexcept { return stats_; }

private:
    static constexpr unsigned kJoinReports = 2;          /* Robustness Variable (RFC 3376 8.1) */
    static constexpr uint64_t kJoinRepeatUs = 1'000'000; /* Unsolicited Report Interval */
    static constexpr uint64_t kLinkCheckUs = 100'000;    /* how often the link state is read */
    static constexpr uint64_t kReportRetryUs = 100'000;  /* after a report found no mbuf or room */

    class LinkWatch;

    bool link_up() const noexcept;
    bool send_report(GroupReport kind) noexcept;
    /** A frame of @p total bytes, its first byte in @p h; nullptr (counted) if none. */
    rte_mbuf *alloc_frame(size_t total, uint8_t *&h) noexcept;
    /** Hands @p m to the TX queue or worker 0's ring; frees it (counted) if refused. */
    bool transmit(rte_mbuf *m) noexcept;
    bool send_to(std::span<const uint8_t> frame, const IpAddr &dst,
                 const MacAddr &dst_mac) noexcept;
    /** The UDP payload of @p m if it is a gossip datagram not sent by us, empty
     *  ones too (the engine counts them truncated); else one with no data().
     *  Valid until the next call (a frame in several mbufs is read into rx_scratch_). */
    std::span<const uint8_t> payload_of(rte_mbuf *m) noexcept;
    /** True when payload_of(@p m) would read it into rx_scratch_. */
    static bool in_pieces(const rte_mbuf *m) noexcept;
    unsigned receive_burst(rte_mbuf **pkts, unsigned max) noexcept;
    static void free_burst(rte_mbuf **pkts, unsigned n) noexcept;

    Params p_;
    MacAddr group_mac_;
    uint16_t ip_id_ = 0;
    /* Reports on, multicast, and a group a switch does not flood anyway. */
    bool reporting_ = false;
    uint64_t next_report_us_ = 0;
    uint64_t next_link_check_us_ = 0;
    bool link_up_ = false;      /* as last read */
    unsigned reports_sent_ = 0; /* since the last join */
    /* The port's link interrupts, counted; none where it raises none. */
    std::unique_ptr<LinkWatch> link_watch_;
    uint32_t link_events_seen_ = 0;
    uint64_t next_event_read_us_ = 0; /* the earliest read an event may bring forward */
    GossipTransportStats stats_;
    /** A frame that arrived in several mbufs, read whole (the largest port MTU's). */
    std::array<uint8_t, 10240> rx_scratch_{};
};

template <typename Fn> unsigned GossipTransport::poll(Fn &&fn) noexcept
{
    constexpr unsigned kBurst = 32;
    rte_mbuf *pkts[kBurst];
    std::span<const uint8_t> payloads[kBurst];
    const unsigned n = receive_burst(pkts, kBurst);
    unsigned ready = 0;         /* payloads[0, ready) not yet delivered */
    bool scratch_ready = false; /* one of them is in rx_scratch_ */
    for (unsigned i = 0; i < n; ++i) {
        /* A payload read into rx_scratch_ lasts until the next such read:
         * the burst so far goes before it. */
        const bool scratch = in_pieces(pkts[i]);
        if (scratch && std::exchange(scratch_ready, false))
            fn(std::span<const std::span<const uint8_t>>(payloads, std::exchange(ready, 0)));
        const auto payload = payload_of(pkts[i]);
        if (payload.data() == nullptr)
            continue;
        payloads[ready++] = payload;
        scratch_ready |= scratch;
    }
    if (ready != 0)
        fn(std::span<const std::span<const uint8_t>>(payloads, ready));
    free_burst(pkts, n);
    return n;
}

/**
 * Installs an rte_flow rule sending UDP datagrams for @p m to @p queue of
 * @p port_id. Returns false, with the driver's reason in @p why, when the
 * port cannot (most virtual devices): the caller then uses the hand-off.
 */
bool steer_gossip(uint16_t port_id, uint16_t queue, const GossipMatch &m, std::string &why);

} // namespace flowhome
