/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GossipTransport over rings (worker 0's TX ring, the workers' hand-off
 * ring): what one node sends another receives, whole, also when a device
 * split the frame over two mbufs; its own frames and other packets are
 * counted and dropped; every mbuf goes back to the pool.
 */
#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "flowhome/gossip_transport.hpp"

using namespace flowhome;

namespace {

IpAddr ip(const char *s)
{
    return *IpAddr::parse(s);
}

struct Rings {
    rte_mempool *pool;
    rte_ring *tx;      /* what the transport sends */
    rte_ring *handoff; /* what it receives */
};

/* One node's transport; @p name keeps DPDK object names apart. */
std::unique_ptr<GossipTransport> transport(const Rings &r, const char *src, uint8_t last_mac_byte)
{
    GossipTransport::Params p;
    p.tx_ring = r.tx;
    p.handoff = r.handoff;
    p.pool = r.pool;
    p.src_mac = MacAddr{{0x02, 0, 0, 0, 0, last_mac_byte}};
    p.src = ip(src);
    p.group = ip("239.1.1.1");
    return std::make_unique<GossipTransport>(p);
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
    Rings r{};
    r.pool = rte_pktmbuf_pool_create("gt_pool", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    r.tx = rte_ring_create("gt_tx", 16, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    r.handoff = rte_ring_create("gt_in", 16, 0, RING_F_SC_DEQ);
    REQUIRE((r.pool != nullptr && r.tx != nullptr && r.handoff != nullptr));
    const unsigned free_at_start = rte_mempool_avail_count(r.pool);
    {
        auto a = transport(r, "192.0.2.1", 1);
        auto b = transport(r, "192.0.2.2", 2);
        std::vector<uint8_t> frame(1000);
        for (size_t i = 0; i < frame.size(); ++i)
            frame[i] = static_cast<uint8_t>(i * 7);

        std::vector<std::vector<uint8_t>> got;
        auto receive = [&] {
            return a->poll(
                [&](std::span<const uint8_t> p) { got.emplace_back(p.begin(), p.end()); });
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
        SECTION("its own frame, and a packet that is not gossip")
        {
            REQUIRE(a->send(frame));
            REQUIRE(rte_ring_enqueue(r.handoff, dequeue(r.tx)) == 0);
            rte_mbuf *other = rte_pktmbuf_alloc(r.pool);
            REQUIRE(other != nullptr);
            std::memset(rte_pktmbuf_append(other, 60), 0, 60);
            REQUIRE(rte_ring_enqueue(r.handoff, other) == 0);
            CHECK(receive() == 0);
            CHECK(got.empty());
            CHECK(a->stats().rx_own.get() == 1);
            CHECK(a->stats().rx_not_gossip.get() == 1);
        }
    }
    CHECK(rte_mempool_avail_count(r.pool) == free_at_start);
    rte_ring_free(r.handoff);
    rte_ring_free(r.tx);
    rte_mempool_free(r.pool);
}
