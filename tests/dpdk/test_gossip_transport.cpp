/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipTransport over rings (worker 0's TX ring, the workers' hand-off
 * ring): what one node sends another receives, whole, also when a device
 * split the frame over two mbufs; its own frames and other packets are
 * counted and dropped; every mbuf goes back to the pool. Its membership
 * reports of the group are the frames scapy builds (gen_reference.py), at
 * the times RFC 3376 and RFC 3810 give.
 */
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "flowhome/gossip_transport.hpp"
#include "packet_builder.hpp"
#include "reference_frames.hpp"
#include "ring_port.hpp"

using namespace flowhome;

/* What a NIC's driver calls on a link interrupt, after storing the new
 * state: ethdev's driver interface, exported for drivers (none of the
 * virtual devices here raises the event). */
extern "C" {
struct rte_eth_dev *rte_eth_dev_allocated(const char *name);
int rte_eth_dev_callback_process(struct rte_eth_dev *dev, enum rte_eth_event_type event,
                                 void *ret_param);
}

namespace {

IpAddr addr(const char *s)
{
    return *IpAddr::parse(s);
}

/* A pool and the two rings, named after @p prefix, freed at the end. */
struct Rings {
    rte_mempool *pool;
    rte_ring *tx;      /* what the transport sends */
    rte_ring *handoff; /* what it receives */
    unsigned free_at_start;

    Rings(const std::string &prefix, unsigned mbufs)
    {
        pool = rte_pktmbuf_pool_create((prefix + "_pool").c_str(), mbufs, 0, 0,
                                       RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        tx = rte_ring_create((prefix + "_tx").c_str(), 16, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        handoff = rte_ring_create((prefix + "_in").c_str(), 16, 0, RING_F_SC_DEQ);
        REQUIRE((pool != nullptr && tx != nullptr && handoff != nullptr));
        free_at_start = rte_mempool_avail_count(pool);
    }
    ~Rings()
    {
        rte_ring_free(handoff);
        rte_ring_free(tx);
        rte_mempool_free(pool);
    }
    Rings(const Rings &) = delete;
    Rings &operator=(const Rings &) = delete;

    bool every_mbuf_back() const { return rte_mempool_avail_count(pool) == free_at_start; }
};

GossipTransport::Params params(const Rings &r, const char *src, uint8_t last_mac_byte,
                               const char *group = "239.1.1.1")
{
    GossipTransport::Params p;
    p.tx_ring = r.tx;
    p.handoff = r.handoff;
    p.pool = r.pool;
    p.src_mac = MacAddr{{0x02, 0, 0, 0, 0, last_mac_byte}};
    p.src = addr(src);
    p.group = addr(group);
    return p;
}

/* One node's transport. */
std::unique_ptr<GossipTransport> transport(const Rings &r, const char *src, uint8_t last_mac_byte)
{
    return std::make_unique<GossipTransport>(params(r, src, last_mac_byte));
}

rte_mbuf *dequeue(rte_ring *r)
{
    void *m = nullptr;
    REQUIRE(rte_ring_dequeue(r, &m) == 0);
    return static_cast<rte_mbuf *>(m);
}

/* @p m's bytes in two mbufs: the first @p head bytes, then the rest. */
rte_mbuf *split(rte_mempool *pool, rte_mbuf *m, uint16_t head)
{
    const auto *data = rte_pktmbuf_mtod(m, const uint8_t *);
    const uint16_t len = rte_pktmbuf_data_len(m);
    REQUIRE(head < len);
    rte_mbuf *a = rte_pktmbuf_alloc(pool);
    rte_mbuf *b = rte_pktmbuf_alloc(pool);
    REQUIRE((a != nullptr && b != nullptr));
    std::memcpy(rte_pktmbuf_append(a, head), data, head);
    std::memcpy(rte_pktmbuf_append(b, static_cast<uint16_t>(len - head)), data + head, len - head);
    REQUIRE(rte_pktmbuf_chain(a, b) == 0);
    rte_pktmbuf_free(m);
    return a;
}

} // namespace

TEST_CASE("gossip frames travel between transports, whole even when split over mbufs",
          "[gossip][transport]")
{
    Rings r("gt", 255);
    {
        auto a = transport(r, "192.0.2.1", 1);
        auto b = transport(r, "192.0.2.2", 2);
        std::vector<uint8_t> frame(1000);
        for (size_t i = 0; i < frame.size(); ++i)
            frame[i] = static_cast<uint8_t>(i * 7);

        std::vector<std::vector<uint8_t>> got;
        std::vector<size_t> bursts; /* how many frames each call delivered */
        auto receive = [&] {
            return a->poll([&](std::span<const std::span<const uint8_t>> frames) {
                bursts.push_back(frames.size());
                for (const auto p : frames)
                    got.emplace_back(p.begin(), p.end());
            });
        };

        SECTION("a peer's frame, in one mbuf and in two")
        {
            for (const uint16_t head : {uint16_t{0}, uint16_t{40}, uint16_t{14}}) {
                INFO("split after " << head << " bytes");
                REQUIRE(b->send(frame));
                rte_mbuf *m = dequeue(r.tx);
                if (head != 0)
                    m = split(r.pool, m, head);
                REQUIRE(rte_ring_enqueue(r.handoff, m) == 0);
                got.clear();
                CHECK(receive() == 1);
                REQUIRE(got.size() == 1);
                CHECK(got[0] == frame);
            }
            CHECK(a->stats().rx_frames.get() == 3);
            CHECK(a->stats().rx_not_gossip.get() == 0);
        }
        SECTION("a burst in order, a second frame in several mbufs beginning a new one")
        {
            /* Frames 2 and 4 come in pieces, each read into the one scratch
             * buffer: delivered with frame 4, frame 2 would read as 4. */
            std::vector<std::vector<uint8_t>> sent;
            for (unsigned i = 0; i < 5; ++i) {
                auto f = frame;
                f[0] = static_cast<uint8_t>(i);
                REQUIRE(b->send(f));
                rte_mbuf *m = dequeue(r.tx);
                if (i == 2 || i == 4)
                    m = split(r.pool, m, 40);
                REQUIRE(rte_ring_enqueue(r.handoff, m) == 0);
                sent.push_back(f);
            }
            CHECK(receive() == 5);
            CHECK(got == sent);
            CHECK(bursts == std::vector<size_t>{4, 1});
        }
        SECTION("its own frame, and a packet that is not gossip")
        {
            REQUIRE(a->send(frame));
            REQUIRE(rte_ring_enqueue(r.handoff, dequeue(r.tx)) == 0);
            rte_mbuf *other = rte_pktmbuf_alloc(r.pool);
            REQUIRE(other != nullptr);
            std::memset(rte_pktmbuf_append(other, 60), 0, 60);
            REQUIRE(rte_ring_enqueue(r.handoff, other) == 0);
            /* Taken, counted and freed: work for the control lcore all the same. */
            CHECK(receive() == 2);
            CHECK(got.empty());
            CHECK(a->stats().rx_own.get() == 1);
            CHECK(a->stats().rx_not_gossip.get() == 1);
        }
        SECTION("an empty datagram to the gossip port: delivered, for the engine to refuse")
        {
            /* Skipped here, it was neither gossip nor counted anywhere as
             * a bad frame; the engine counts it truncated. */
            const test::Bytes f = test::FrameBuilder{}
                                      .ipv4(test::Ipv4Spec{.src = "192.0.2.2", .dst = "239.1.1.1"})
                                      .udp(test::UdpSpec{.src_port = 7471, .dst_port = 7471})
                                      .build();
            rte_mbuf *m = rte_pktmbuf_alloc(r.pool);
            REQUIRE(m != nullptr);
            std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
            REQUIRE(rte_ring_enqueue(r.handoff, m) == 0);
            CHECK(receive() == 1);
            REQUIRE(got.size() == 1);
            CHECK(got[0].empty());
            CHECK(a->stats().rx_frames.get() == 1);
            CHECK(a->stats().rx_not_gossip.get() == 0);
        }
    }
    CHECK(r.every_mbuf_back());
}

namespace {

/* The bytes of the next frame sent, its mbuf freed. */
std::vector<uint8_t> next_sent(rte_ring *tx)
{
    rte_mbuf *m = dequeue(tx);
    const auto *d = rte_pktmbuf_mtod(m, const uint8_t *);
    std::vector<uint8_t> bytes(d, d + rte_pktmbuf_data_len(m));
    rte_pktmbuf_free(m);
    return bytes;
}

/* @p ring's port with one queue each way, configured, not started; its id. */
uint16_t configured(const test::RingPort &ring, rte_mempool *pool)
{
    REQUIRE(ring.port >= 0);
    const uint16_t id = ring.id();
    rte_eth_conf conf{};
    REQUIRE(rte_eth_dev_configure(id, 1, 1, &conf) == 0);
    REQUIRE(rte_eth_rx_queue_setup(id, 0, 16, 0, nullptr, pool) == 0);
    REQUIRE(rte_eth_tx_queue_setup(id, 0, 16, 0, nullptr) == 0);
    return id;
}

} // namespace

TEST_CASE("membership reports of the group: a join sent twice, the current state every "
          "interval, a leave on stop, a join again when the link comes up",
          "[gossip][transport]")
{
    Rings r("gr", 63);
    constexpr uint64_t kInterval = 30'000'000;
    auto reporting = [&r](const char *src, const char *group) {
        GossipTransport::Params p = params(r, src, 1, group);
        p.report_interval_s = kInterval / 1'000'000;
        return p;
    };

    SECTION("IGMPv3 and MLDv2, as scapy builds them, at their times")
    {
        struct Case {
            const char *family;
            const char *src;
            const char *group;
            const std::vector<uint8_t> &join, &current, &leave;
        };
        const Case cases[] = {
            {"IGMPv3", "192.0.2.1", "239.1.1.1", ref::igmp_join, ref::igmp_current,
             ref::igmp_leave},
            {"MLDv2", "2001:db8::1", "ff15::db8:1", ref::mld_join, ref::mld_current,
             ref::mld_leave},
        };
        for (const Case &c : cases) {
            INFO(c.family);
            GossipTransport t(reporting(c.src, c.group));

            /* The join at once, and again within a second (RFC 3376 5.1). */
            REQUIRE(t.report_tick(0) == 1);
            CHECK(next_sent(r.tx) == c.join);
            CHECK(t.report_tick(499'999) == 0);
            CHECK(rte_ring_count(r.tx) == 0);
            REQUIRE(t.report_tick(1'000'000) == 1);
            CHECK(next_sent(r.tx) == c.join);
            /* Then the current state, an interval after the repeat. */
            CHECK(t.report_tick(1'000'000 + kInterval / 2) == 0);
            CHECK(t.report_tick(1'000'000 + kInterval - 1) == 0);
            REQUIRE(t.report_tick(1'000'000 + kInterval) == 1);
            CHECK(next_sent(r.tx) == c.current);
            CHECK(t.report_tick(1'000'000 + kInterval + 1) == 0);
            /* Stopping: the leave, twice. */
            t.report_leave();
            REQUIRE(rte_ring_count(r.tx) == 2);
            CHECK(next_sent(r.tx) == c.leave);
            CHECK(next_sent(r.tx) == c.leave);
            CHECK(t.stats().group_reports.get() == 5);
            CHECK(t.stats().tx_frames.get() == 0); /* gossip datagrams only */
            /* Started again: a join, at once. */
            REQUIRE(t.report_tick(1'000'000 + kInterval + 2) == 1);
            CHECK(next_sent(r.tx) == c.join);
        }
    }
    SECTION("the join waits for the link, and is sent again each time the link comes up")
    {
        const test::RingPort ring("gr_port", 16);
        const uint16_t id = configured(ring, r.pool);

        GossipTransport::Params p = reporting("192.0.2.1", "239.1.1.1");
        p.port_id = id; /* its link; the reports still go to the ring */
        GossipTransport t(p);
        CHECK(t.report_tick(0) == 0); /* not started: link down */
        REQUIRE(rte_eth_dev_start(id) == 0);
        CHECK(t.report_tick(99'999) == 0); /* the link is read every 100 ms */
        REQUIRE(t.report_tick(100'000) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);
        /* Down before the repeat was due: nothing while it stays down. */
        REQUIRE(rte_eth_dev_stop(id) == 0);
        CHECK(t.report_tick(1'100'000) == 0);
        CHECK(t.report_tick(5'000'000) == 0);
        /* Up again: the switch may have lost us; the join starts over. */
        REQUIRE(rte_eth_dev_start(id) == 0);
        REQUIRE(t.report_tick(5'100'000) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);
        REQUIRE(t.report_tick(6'100'000) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);
        REQUIRE(t.report_tick(6'100'000 + kInterval) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_current);

        CHECK(rte_eth_dev_stop(id) == 0);
    }
    SECTION("a link that went down and up between two reads of it: its interrupt restarts the "
            "join")
    {
        const test::RingPort ring("gr_flap", 16);
        const uint16_t id = configured(ring, r.pool);
        REQUIRE(rte_eth_dev_start(id) == 0);
        char name[RTE_ETH_NAME_MAX_LEN];
        REQUIRE(rte_eth_dev_get_name_by_port(id, name) == 0);
        rte_eth_dev *dev = rte_eth_dev_allocated(name);
        REQUIRE(dev != nullptr);

        GossipTransport::Params p = reporting("192.0.2.1", "239.1.1.1");
        p.port_id = id;
        GossipTransport t(p);
        REQUIRE(t.report_tick(0) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);
        REQUIRE(t.report_tick(1'000'000) == 1); /* the join's repeat; the link read too */
        CHECK(next_sent(r.tx) == ref::igmp_join);
        /* Down and up again within 100 ms: both reads find it up. */
        REQUIRE(rte_eth_dev_set_link_down(id) == 0);
        rte_eth_dev_callback_process(dev, RTE_ETH_EVENT_INTR_LSC, nullptr);
        REQUIRE(rte_eth_dev_set_link_up(id) == 0);
        rte_eth_dev_callback_process(dev, RTE_ETH_EVENT_INTR_LSC, nullptr);
        REQUIRE(t.report_tick(1'050'000) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);
        /* The join's repeat follows within a second, as after any join; no
         * event, no join before it. */
        CHECK(t.report_tick(1'150'000) == 0);
        CHECK(t.report_tick(1'549'999) == 0);
        REQUIRE(t.report_tick(2'050'000) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);
        REQUIRE(t.report_tick(2'050'000 + kInterval) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_current);
        /* An event while the link is down: nothing until it is up. */
        REQUIRE(rte_eth_dev_set_link_down(id) == 0);
        rte_eth_dev_callback_process(dev, RTE_ETH_EVENT_INTR_LSC, nullptr);
        CHECK(t.report_tick(2'100'000 + kInterval) == 0);
        CHECK(t.report_tick(3'000'000 + kInterval) == 0);
        REQUIRE(rte_eth_dev_set_link_up(id) == 0);
        rte_eth_dev_callback_process(dev, RTE_ETH_EVENT_INTR_LSC, nullptr);
        REQUIRE(t.report_tick(3'000'001 + kInterval) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);
        /* A flap at once after: an event brings the read forward once in
         * 100 ms, so a link that flaps on and on is no storm of joins. */
        REQUIRE(rte_eth_dev_set_link_down(id) == 0);
        rte_eth_dev_callback_process(dev, RTE_ETH_EVENT_INTR_LSC, nullptr);
        REQUIRE(rte_eth_dev_set_link_up(id) == 0);
        rte_eth_dev_callback_process(dev, RTE_ETH_EVENT_INTR_LSC, nullptr);
        CHECK(t.report_tick(3'000'002 + kInterval) == 0);
        CHECK(t.report_tick(3'100'000 + kInterval) == 0);
        REQUIRE(t.report_tick(3'100'001 + kInterval) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join);

        CHECK(rte_eth_dev_stop(id) == 0);
    }
    SECTION("a report the queue refuses is counted and sent 100 ms later")
    {
        GossipTransport t(reporting("192.0.2.1", "239.1.1.1"));
        int filler = 0;
        while (rte_ring_enqueue(r.tx, &filler) == 0) {
        }
        CHECK(t.report_tick(0) == 0);
        CHECK(t.stats().tx_queue_full.get() == 1);
        CHECK(t.stats().group_reports.get() == 0);
        void *obj;
        while (rte_ring_dequeue(r.tx, &obj) == 0)
            CHECK(obj == &filler);
        CHECK(t.report_tick(99'999) == 0);
        REQUIRE(t.report_tick(100'000) == 1);
        CHECK(next_sent(r.tx) == ref::igmp_join); /* still the first of the two joins */
        CHECK(t.report_tick(599'999) == 0);
    }
    SECTION("no reports with unicast gossip, with an interval of 0, or for groups a switch "
            "floods anyway")
    {
        GossipTransport::Params u = reporting("192.0.2.1", "239.1.1.1");
        u.unicast.push_back({addr("192.0.2.2"), MacAddr{{0x02, 0, 0, 0, 0, 2}}});
        GossipTransport unicast(u);
        GossipTransport::Params o = reporting("192.0.2.1", "239.1.1.1");
        o.report_interval_s = 0;
        GossipTransport off(o);
        GossipTransport local_control(reporting("192.0.2.1", "224.0.0.251"));
        GossipTransport all_nodes(reporting("2001:db8::1", "ff02::1"));
        GossipTransport interface_local(reporting("2001:db8::1", "ff01::db8:1"));
        for (GossipTransport *t : {&unicast, &off, &local_control, &all_nodes, &interface_local}) {
            CHECK(t->report_tick(0) == 0);
            CHECK(t->report_tick(kInterval * 10) == 0);
            t->report_leave();
            CHECK(rte_ring_count(r.tx) == 0);
            CHECK(t->stats().group_reports.get() == 0);
        }
        CHECK(reportable(addr("ff02::1:ff00:1"))); /* link scope, but not all nodes */
        CHECK(reportable(addr("224.0.1.1")));
    }
    SECTION("a leave without a join sends nothing")
    {
        GossipTransport t(reporting("192.0.2.1", "239.1.1.1"));
        t.report_leave();
        CHECK(rte_ring_count(r.tx) == 0);
    }
    CHECK(r.every_mbuf_back());
}

TEST_CASE("gossip is a whole UDP datagram to the gossip port, at the group or, unicast, at us",
          "[gossip][transport]")
{
    using test::FrameBuilder;
    using test::Ipv4Spec;
    using test::Ipv6Spec;
    using test::UdpSpec;
    GossipMatch m;
    m.enabled = true;
    m.udp_port = 7471;
    m.group = addr("239.1.1.1");
    m.local4 = addr("192.0.2.1");
    m.local6 = addr("2001:db8::1");
    const auto takes = [&m](const test::Bytes &f) {
        ParsedPacket p;
        REQUIRE(parse_packet(f.data(), static_cast<uint32_t>(f.size()),
                             static_cast<uint32_t>(f.size()), p) == ParseStatus::ok);
        return gossip_match(f.data(), p, m);
    };
    const auto to4 = [](const char *dst, uint16_t port = 7471, bool mf = false) {
        return FrameBuilder{}
            .ipv4(Ipv4Spec{.src = "192.0.2.2", .dst = dst, .mf = mf})
            /* A first fragment's datagram is longer than its piece. */
            .udp(UdpSpec{.src_port = 7471,
                         .dst_port = port,
                         .length = mf ? std::optional<uint16_t>(200) : std::nullopt})
            .payload(64)
            .build();
    };
    const auto to6 = [](const char *dst) {
        return FrameBuilder{}
            .ipv6(Ipv6Spec{.src = "2001:db8::2", .dst = dst})
            .udp(UdpSpec{.src_port = 7471, .dst_port = 7471})
            .payload(64)
            .build();
    };
    /* Multicast gossip: the group only, not our own address. */
    CHECK(takes(to4("239.1.1.1")));
    CHECK_FALSE(takes(to4("192.0.2.1")));
    CHECK_FALSE(takes(to4("239.1.1.1", 7472)));
    CHECK_FALSE(takes(to6("2001:db8::1")));
    /* A first fragment is none: the rest of it goes to the kernel. */
    CHECK_FALSE(takes(to4("239.1.1.1", 7471, true)));
    /* Unicast gossip in IPv4: our IPv4 address, not the group, not IPv6. */
    m.unicast = true;
    CHECK(takes(to4("192.0.2.1")));
    CHECK_FALSE(takes(to4("239.1.1.1")));
    CHECK_FALSE(takes(to6("2001:db8::1")));
    /* Unicast gossip in IPv6. */
    m.group = IpAddr{};
    m.group.family = Family::ipv6;
    CHECK(takes(to6("2001:db8::1")));
    CHECK_FALSE(takes(to4("192.0.2.1")));
    m.local6.reset(); /* no address of the family: nothing is gossip */
    CHECK_FALSE(takes(to6("2001:db8::1")));
}
