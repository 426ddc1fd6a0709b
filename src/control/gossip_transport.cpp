/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/gossip_transport.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_random.h>
#include <rte_ring.h>

#include "flowhome/wire.hpp"

namespace flowhome {
namespace {

using namespace wire;

bool same_addr(const uint8_t *at, const IpAddr &a, size_t len) noexcept
{
    return std::memcmp(at, a.bytes.data(), len) == 0;
}

/* Where gossip to this node is addressed: the group, or with unicast
 * gossip our own address in the gossip's family (the group's); null when
 * the wire port has none. What the worker hands over and the rte_flow rule
 * steers alike. */
const IpAddr *gossip_destination(const GossipMatch &m) noexcept
{
    if (!m.unicast)
        return &m.group;
    const std::optional<IpAddr> &local = m.group.family == Family::ipv4 ? m.local4 : m.local6;
    return local ? &*local : nullptr;
}

} // namespace

bool gossip_match(const uint8_t *frame, const ParsedPacket &p, const GossipMatch &m) noexcept
{
    /* A fragment is none: frames fit the MTU, and a piece would reach the
     * engine cut short (the rest goes to the kernel). */
    if (!m.enabled || p.l4_proto != kProtoUdp || p.dst_port != m.udp_port || p.fragment ||
        p.family != m.group.family)
        return false;
    const IpAddr *dst = gossip_destination(m);
    const bool v4 = p.family == Family::ipv4;
    return dst != nullptr && same_addr(frame + p.l3_offset + (v4 ? 16 : 24), *dst, v4 ? 4 : 16);
}

/*
 * A link that goes down and comes back between two reads of its state (100
 * ms apart) leaves no trace in them, though the switch may have forgotten
 * the group meanwhile. A device with link interrupts tells of every change:
 * its driver calls this on the EAL's interrupt thread, after it stored the
 * new state (ports.cpp asks for the interrupts where the device has them).
 */
class GossipTransport::LinkWatch {
public:
    explicit LinkWatch(uint16_t port) : port_(port)
    {
        registered_ =
            rte_eth_dev_callback_register(port_, RTE_ETH_EVENT_INTR_LSC, &on_event, this) == 0;
    }
    ~LinkWatch()
    {
        if (!registered_)
            return;
        /* -EAGAIN while the interrupt thread is inside the callback. */
        while (rte_eth_dev_callback_unregister(port_, RTE_ETH_EVENT_INTR_LSC, &on_event, this) ==
               -EAGAIN)
            rte_delay_us_sleep(100);
    }
    LinkWatch(const LinkWatch &) = delete;
    LinkWatch &operator=(const LinkWatch &) = delete;

    /** Acquire: the state the driver stored before the event is read after. */
    uint32_t events() const noexcept { return events_.load(std::memory_order_acquire); }

private:
    static int on_event(uint16_t, rte_eth_event_type, void *self, void *) noexcept
    {
        static_cast<LinkWatch *>(self)->events_.fetch_add(1, std::memory_order_release);
        return 0;
    }

    uint16_t port_;
    bool registered_ = false;
    std::atomic<uint32_t> events_{0};
};

GossipTransport::GossipTransport(const Params &params) : p_(params)
{
    if (p_.pool == nullptr)
        throw std::invalid_argument("gossip transport needs a mempool");
    if (p_.src.family != p_.group.family)
        throw std::invalid_argument("gossip source and group differ in family");
    if (!p_.rx_queue && p_.handoff == nullptr)
        throw std::invalid_argument("gossip transport needs an RX queue or a hand-off ring");
    group_mac_ = multicast_mac(p_.group);
    reporting_ = p_.report_interval_s != 0 && p_.unicast.empty() && reportable(p_.group);
    if (reporting_ && rte_eth_dev_is_valid_port(p_.port_id))
        link_watch_ = std::make_unique<LinkWatch>(p_.port_id);
}

GossipTransport::~GossipTransport() = default;

rte_mbuf *GossipTransport::alloc_frame(size_t total, uint8_t *&h) noexcept
{
    rte_mbuf *m = rte_pktmbuf_alloc(p_.pool);
    if (m == nullptr) {
        stats_.tx_no_mbuf.add();
        return nullptr;
    }
    h = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, static_cast<uint16_t>(total)));
    if (h == nullptr) {
        rte_pktmbuf_free(m);
        stats_.tx_no_mbuf.add();
        return nullptr;
    }
    return m;
}

bool GossipTransport::transmit(rte_mbuf *m) noexcept
{
    const bool sent = p_.tx_ring != nullptr ? rte_ring_enqueue(p_.tx_ring, m) == 0
                                            : rte_eth_tx_burst(p_.port_id, p_.tx_queue, &m, 1) == 1;
    if (!sent) {
        rte_pktmbuf_free(m);
        stats_.tx_queue_full.add();
    }
    return sent;
}

bool GossipTransport::send_to(std::span<const uint8_t> frame, const IpAddr &dst,
                              const MacAddr &dst_mac) noexcept
{
    const bool v4 = dst.family == Family::ipv4;
    const uint16_t ip_len = v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
    const size_t total = kEthHeaderLen + ip_len + kUdpHeaderLen + frame.size();
    uint8_t *h = nullptr;
    rte_mbuf *m = alloc_frame(total, h);
    if (m == nullptr)
        return false;
    write_eth_header(h, dst_mac, p_.src_mac, v4 ? kEtherTypeIpv4 : kEtherTypeIpv6);
    uint8_t *ip = h + kEthHeaderLen;
    uint8_t *udp = ip + ip_len;
    const auto udp_len = static_cast<uint16_t>(kUdpHeaderLen + frame.size());
    std::memcpy(udp + kUdpHeaderLen, frame.data(), frame.size());
    store16(udp, p_.udp_port);
    store16(udp + 2, p_.udp_port);
    store16(udp + 4, udp_len);
    store16(udp + 6, 0);
    if (v4) {
        ip[0] = 0x45;
        ip[1] = 0xC0; /* CS6, network control (RFC 4594) */
        store16(ip + 2, static_cast<uint16_t>(ip_len + udp_len));
        store16(ip + 4, ip_id_++);
        store16(ip + 6, 0x4000); /* DF: frames are sized to the MTU */
        ip[8] = p_.ttl;
        ip[9] = kProtoUdp;
        store16(ip + 10, 0);
        std::memcpy(ip + 12, p_.src.bytes.data(), 4);
        std::memcpy(ip + 16, dst.bytes.data(), 4);
        store16(ip + 10, ipv4_header_checksum(ip, kIpv4HeaderLen));
        /* UDP checksum 0 over IPv4: the frame carries its own HMAC. */
    } else {
        store32(ip, 0x6C000000u); /* version 6, traffic class CS6 */
        store16(ip + 4, udp_len);
        ip[6] = kProtoUdp;
        ip[7] = p_.ttl;
        std::memcpy(ip + 8, p_.src.bytes.data(), 16);
        std::memcpy(ip + 24, dst.bytes.data(), 16);
        /* RFC 8200 8.1: UDP over IPv6 needs a real checksum. */
        const uint16_t csum =
            rte_ipv6_udptcp_cksum(reinterpret_cast<const rte_ipv6_hdr *>(ip), udp);
        std::memcpy(udp + 6, &csum, sizeof(csum));
    }
    if (!transmit(m))
        return false;
    stats_.tx_frames.add();
    stats_.tx_bytes.add(total);
    return true;
}

bool GossipTransport::send_report(GroupReport kind) noexcept
{
    std::array<uint8_t, kGroupReportMaxLen> buf;
    const size_t len = build_group_report(buf, p_.src_mac, p_.src, p_.group, kind);
    uint8_t *h = nullptr;
    rte_mbuf *m = len == 0 ? nullptr : alloc_frame(len, h);
    if (m == nullptr)
        return false;
    std::memcpy(h, buf.data(), len);
    if (!transmit(m))
        return false;
    stats_.group_reports.add();
    return true;
}

bool GossipTransport::link_up() const noexcept
{
    /* A port that cannot tell (or a transport without one, in tests) is
     * taken as up. */
    rte_eth_link link{};
    if (!rte_eth_dev_is_valid_port(p_.port_id) || rte_eth_link_get_nowait(p_.port_id, &link) != 0)
        return true;
    return link.link_status == RTE_ETH_LINK_UP;
}

unsigned GossipTransport::report_tick(uint64_t now_us) noexcept
{
    if (!reporting_)
        return 0;
    /* A report sent while the link is down is lost, and a switch that just
     * came up (or whose port did) knows nothing of us: each time the link
     * comes up the group is joined anew, also when an interrupt says it
     * went down and up again since the last read. An interrupt brings the
     * read forward, once in kLinkCheckUs: a link that flaps on and on (or a
     * driver that tells of every renegotiation) is not answered with a join
     * per event; an event it defers is read at the next turn. */
    const uint32_t events = link_watch_ ? link_watch_->events() : link_events_seen_;
    const bool changed = events != link_events_seen_;
    if (now_us >= next_link_check_us_ || (changed && now_us >= next_event_read_us_)) {
        if (changed)
            next_event_read_us_ = now_us + kLinkCheckUs;
        link_events_seen_ = events;
        next_link_check_us_ = now_us + kLinkCheckUs;
        const bool up = link_up();
        if (up && (!link_up_ || changed)) {
            reports_sent_ = 0;
            next_report_us_ = now_us;
        }
        link_up_ = up;
    }
    if (!link_up_ || now_us < next_report_us_)
        return 0;
    /* RFC 3376 5.1 / RFC 3810 6.1: the state change of joining is sent at
     * once and once more within the Unsolicited Report Interval (1 s), in
     * case the first is lost. Then the current state, every interval: no
     * query is read here, and a snooping switch forgets a group a
     * Multicast Listener Interval (260 s by default) after its last report. */
    const GroupReport kind =
        reports_sent_ < kJoinReports ? GroupReport::join : GroupReport::current;
    if (!send_report(kind)) {
        next_report_us_ = now_us + kReportRetryUs; /* counted; tried again soon */
        return 0;
    }
    ++reports_sent_;
    next_report_us_ =
        now_us + (reports_sent_ < kJoinReports ? kJoinRepeatUs / 2 + rte_rand_max(kJoinRepeatUs / 2)
                                               : uint64_t{p_.report_interval_s} * 1'000'000);
    return 1;
}

void GossipTransport::report_leave() noexcept
{
    if (!reporting_ || reports_sent_ == 0)
        return;
    /* Twice, back to back: the node is stopping and has no later moment.
     * Best effort: a report a full queue refuses is counted, not retried. */
    for (unsigned i = 0; i < kJoinReports; ++i)
        send_report(GroupReport::leave);
    /* The next report_tick() looks at the link and joins anew. */
    reports_sent_ = 0;
    next_report_us_ = 0;
    next_link_check_us_ = 0;
    link_up_ = false;
}

bool GossipTransport::send(std::span<const uint8_t> frame) noexcept
{
    if (p_.unicast.empty())
        return send_to(frame, p_.group, group_mac_);
    bool all = true;
    for (const Destination &d : p_.unicast)
        all = send_to(frame, d.address, d.mac) && all;
    return all;
}

unsigned GossipTransport::receive_burst(rte_mbuf **pkts, unsigned max) noexcept
{
    if (p_.rx_queue)
        return rte_eth_rx_burst(p_.port_id, *p_.rx_queue, pkts, static_cast<uint16_t>(max));
    return rte_ring_dequeue_burst(p_.handoff, reinterpret_cast<void **>(pkts), max, nullptr);
}

void GossipTransport::free_burst(rte_mbuf **pkts, unsigned n) noexcept
{
    rte_pktmbuf_free_bulk(pkts, n);
}

bool GossipTransport::in_pieces(const rte_mbuf *m) noexcept
{
    return m->nb_segs != 1;
}

std::span<const uint8_t> GossipTransport::payload_of(rte_mbuf *m) noexcept
{
    /* A frame in several mbufs (a device that splits a peer's frame larger
     * than its buffers: the peer has a larger MTU) is read into one. */
    const auto *data = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint32_t len = in_pieces(m) ? m->pkt_len : m->data_len;
    if (in_pieces(m))
        data = len <= rx_scratch_.size()
                   ? static_cast<const uint8_t *>(rte_pktmbuf_read(m, 0, len, rx_scratch_.data()))
                   : nullptr;
    ParsedPacket p;
    if (data == nullptr || parse_packet(data, len, m->pkt_len, p) != ParseStatus::ok ||
        p.l4_proto != kProtoUdp || p.dst_port != p_.udp_port || p.payload_offset == 0 ||
        p.fragment) {
        stats_.rx_not_gossip.add();
        return {};
    }
    const size_t src_off = p.l3_offset + (p.family == Family::ipv4 ? 12 : 8);
    if (same_addr(data + src_off, p_.src, p.family == Family::ipv4 ? 4 : 16)) {
        stats_.rx_own.add();
        return {};
    }
    stats_.rx_frames.add();
    const size_t end = size_t{p.l3_offset} + p.l3_len;
    return {data + p.payload_offset, end - p.payload_offset};
}

bool steer_gossip(uint16_t port_id, uint16_t queue, const GossipMatch &m, std::string &why)
{
    rte_flow_attr attr{};
    attr.ingress = 1;
    rte_flow_item_ipv4 ip4{};
    rte_flow_item_ipv4 ip4_mask{};
    rte_flow_item_ipv6 ip6{};
    rte_flow_item_ipv6 ip6_mask{};
    rte_flow_item_udp udp{};
    rte_flow_item_udp udp_mask{};
    const bool v4 = m.group.family == Family::ipv4;
    const IpAddr *destination = gossip_destination(m);
    if (destination == nullptr) {
        why = "no local address for unicast gossip";
        return false;
    }
    const IpAddr &dst = *destination;
    if (v4) {
        std::memcpy(&ip4.hdr.dst_addr, dst.bytes.data(), 4);
        ip4_mask.hdr.dst_addr = 0xFFFFFFFF;
    } else {
        std::memcpy(ip6.hdr.dst_addr, dst.bytes.data(), 16);
        std::memset(ip6_mask.hdr.dst_addr, 0xFF, 16);
    }
    udp.hdr.dst_port = wire::be16(m.udp_port);
    udp_mask.hdr.dst_port = 0xFFFF;
    const rte_flow_item pattern[] = {
        {RTE_FLOW_ITEM_TYPE_ETH, nullptr, nullptr, nullptr},
        v4 ? rte_flow_item{RTE_FLOW_ITEM_TYPE_IPV4, &ip4, nullptr, &ip4_mask}
           : rte_flow_item{RTE_FLOW_ITEM_TYPE_IPV6, &ip6, nullptr, &ip6_mask},
        {RTE_FLOW_ITEM_TYPE_UDP, &udp, nullptr, &udp_mask},
        {RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr},
    };
    rte_flow_action_queue to_queue{};
    to_queue.index = queue;
    const rte_flow_action actions[] = {
        {RTE_FLOW_ACTION_TYPE_QUEUE, &to_queue},
        {RTE_FLOW_ACTION_TYPE_END, nullptr},
    };
    rte_flow_error err{};
    if (rte_flow_validate(port_id, &attr, pattern, actions, &err) != 0 ||
        rte_flow_create(port_id, &attr, pattern, actions, &err) == nullptr) {
        why = err.message != nullptr ? err.message : "rte_flow not supported";
        return false;
    }
    return true;
}

} // namespace flowhome
