/* SPDX-License-Identifier: BSD-3-Clause */
// libFuzzer harness for decap_packet(): the input is an Ethernet frame.
//
// Run it with scripts/fuzz, which builds it (clang, ASan + UBSan, in
// build-fuzz) with the whole library, or by hand once build-fuzz exists:
//   ninja -C build-fuzz fuzz/fuzz_decap
//   build-fuzz/fuzz/fuzz_decap -max_total_time=60 -max_len=2048 /tmp/fuzz_decap_work
//   fuzz/corpus/decap
// (libFuzzer writes new inputs to the first directory: keep it outside the tree.)
/*
 * The frame is parsed; if it is IP, decap_packet() runs with a peer
 * directory and local addresses taken from the frame itself (its outer
 * source is a peer, its destination is ours), so every input that looks like
 * a tunnel goes through the whole GENEVE / IP-in-IP path. The mbuf's headroom
 * and tailroom are poisoned for AddressSanitizer, so a read outside the frame
 * is caught even though it stays inside the FakeMbuf's buffer.
 *
 * Differential checks: decap_packet() and its general path alone
 * (detail::decap_packet_general) must give the same result and the same
 * bytes. When the decapsulated frame parses as IP, it is
 * encapsulated again toward a GENEVE template, parsed and decapsulated again;
 * the result must be the same inner IP packet, byte for byte. Then
 * make_packet_too_big() runs on it, and the ICMP error must parse.
 *
 * Two segments: the same frame is then split after 1 + (last two bytes, big
 * endian, % (len - 1)) bytes into a chain of two mbufs, parsed as the worker
 * does (headers from the first segment, lengths against pkt_len) and
 * decapsulated again, everything outside both segments' data poisoned. A
 * refusal leaves the chain unchanged; an ok must also have been an ok for
 * the one-segment frame, with the same result, and give the same bytes,
 * except Ethernet padding that lay across both segments (longer than the
 * tail), which may stay behind the inner packet.
 */
#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fake_mbuf.hpp"
#include "fuzz_mbuf.hpp"
#include "flowhome/encap.hpp"
#include "flowhome/packet.hpp"

using namespace flowhome;
using flowhome::test::FakeMbuf;

namespace {

using flowhome::fuzz::poison_outside_data;
using flowhome::fuzz::unpoison;

void check(bool ok)
{
    if (!ok)
        std::abort();
}

ParseStatus parse(rte_mbuf *m, ParsedPacket &p)
{
    return parse_packet(rte_pktmbuf_mtod(m, const uint8_t *), m->data_len, m->pkt_len, p);
}

IpAddr src_of(const uint8_t *frame, const ParsedPacket &p)
{
    const uint8_t *ip = frame + p.l3_offset;
    if (p.family == Family::ipv4) {
        uint32_t a;
        std::memcpy(&a, ip + 12, 4);
        return IpAddr::v4(a);
    }
    return IpAddr::v6(ip + 8);
}

IpAddr dst_of(const uint8_t *frame, const ParsedPacket &p)
{
    const uint8_t *ip = frame + p.l3_offset;
    if (p.family == Family::ipv4) {
        uint32_t a;
        std::memcpy(&a, ip + 16, 4);
        return IpAddr::v4(a);
    }
    return IpAddr::v6(ip + 24);
}

/* Encapsulate the inner packet again and decapsulate it: it must come back unchanged. */
void round_trip(FakeMbuf &fm, const ParsedPacket &inner)
{
    rte_mbuf *m = fm.get();
    const uint8_t *frame = fm.data();
    const std::vector<uint8_t> inner_ip(frame + inner.l3_offset,
                                        frame + inner.l3_offset + inner.l3_len);

    static const uint8_t our6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t peer6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    TemplateParams tp;
    tp.self = 1;
    tp.peer = 2;
    tp.src = IpAddr::v6(our6);
    tp.dst = IpAddr::v6(peer6);
    tp.domain.encap = (inner.l3_len & 1) ? EncapKind::ipip : EncapKind::geneve;
    tp.mtu = 9000;
    const EncapTemplate t = build_template(tp);

    EncapMeta meta;
    meta.flow_hash = inner.l3_len * 2654435761u;
    meta.l3_offset = inner.l3_offset;
    meta.l3_len = inner.l3_len;
    meta.inner_family = inner.family;
    meta.ingress_node = 1;
    meta.hops = 1;
    if (encap_packet(m, t, meta) != EncapStatus::ok)
        return;

    ParsedPacket outer;
    check(parse(m, outer) == ParseStatus::ok);
    PeerDirectory peers;
    peers.add(tp.src, 1);
    DecapConfig cfg;
    cfg.local_v6 = tp.dst;
    const DecapResult r = decap_packet(m, outer, peers, cfg);
    check(r.status == DecapStatus::ok);
    check(m->data_len == 14 + inner_ip.size());
    check(std::memcmp(rte_pktmbuf_mtod(m, const uint8_t *) + 14, inner_ip.data(),
                      inner_ip.size()) == 0);

    ParsedPacket again;
    if (parse(m, again) != ParseStatus::ok)
        return;
    DecapConfig local;
    local.local_v4 = IpAddr::v4(htonl(0xC0000201u)); /* 192.0.2.1 */
    local.local_v6 = tp.dst;
    if (make_packet_too_big(m, again, 1280, local)) {
        ParsedPacket icmp;
        check(parse(m, icmp) == ParseStatus::ok);
        check(icmp.l3_len <= (icmp.family == Family::ipv4 ? 576 : 1280));
    }
}

/* Whatever the frame's outer source is, a peer (node 7); its destination,
 * this node's address; GENEVE on the default port. */
struct Endpoints {
    PeerDirectory peers;
    DecapConfig cfg;
    Endpoints(const uint8_t *frame, const ParsedPacket &outer)
    {
        peers.add(src_of(frame, outer), 7);
        if (outer.family == Family::ipv4)
            cfg.local_v4 = dst_of(frame, outer);
        else
            cfg.local_v6 = dst_of(frame, outer);
    }
};

/* The frame again, in two segments; @p one is what the one-segment frame gave. */
void two_segments(const std::vector<uint8_t> &frame, size_t split, const DecapResult &one,
                  const std::vector<uint8_t> &one_bytes)
{
    const flowhome::fuzz::Frame fr(frame, FakeMbuf::kHeadroom, split);
    rte_mbuf *m = fr.get();
    poison_outside_data(m);
    ParsedPacket outer;
    if (parse(m, outer) != ParseStatus::ok) {
        unpoison(m);
        return;
    }
    const Endpoints ends(frame.data(), outer);
    const PeerDirectory &peers = ends.peers;
    const DecapConfig &cfg = ends.cfg;
    const flowhome::fuzz::Snapshot before(fr);
    const uint32_t tail_len = fr.tail->get()->data_len;
    const DecapResult r = decap_packet(m, outer, peers, cfg);
    unpoison(m);
    if (r.status != DecapStatus::ok) {
        check(flowhome::fuzz::Snapshot(fr) == before);
        return;
    }
    check(one.status == DecapStatus::ok && r.from_peer == one.from_peer &&
          r.ingress_node == one.ingress_node && r.hops == one.hops && r.affinity == one.affinity &&
          r.service_version == one.service_version);
    const std::vector<uint8_t> got = fr.head->packet_bytes();
    check(got.size() == m->pkt_len && got.size() >= one_bytes.size());
    check(std::equal(one_bytes.begin(), one_bytes.end(), got.begin()));
    check(got.size() == one_bytes.size() || got.size() - one_bytes.size() > tail_len);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FakeMbuf::kBufLen - FakeMbuf::kHeadroom)
        return 0;
    FakeMbuf fm(std::vector<uint8_t>(data, data + size));
    rte_mbuf *m = fm.get();
    /* What a NIC may have said of it, from the input: decapsulation must
     * forget it on both paths alike. */
    const uint64_t rx_flags =
        size >= 3 && (data[size - 3] & 1) != 0
            ? RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_VLAN
            : 0;
    const uint32_t rx_type = size >= 3 ? uint32_t{data[size - 3]} << 4 : 0;
    m->ol_flags = rx_flags;
    m->packet_type = rx_type;

    const size_t split = size >= 2 ? 1 + (data[size - 2] << 8 | data[size - 1]) % (size - 1) : 0;
    poison_outside_data(m);
    ParsedPacket outer;
    if (parse(m, outer) != ParseStatus::ok) {
        unpoison(m);
        if (split != 0)
            two_segments(fm.bytes(), split, DecapResult{}, fm.bytes());
        return 0;
    }
    const Endpoints ends(fm.data(), outer);
    const PeerDirectory &peers = ends.peers;
    const DecapConfig &cfg = ends.cfg;

    const std::vector<uint8_t> before = fm.bytes();
    const DecapResult r = decap_packet(m, outer, peers, cfg);
    unpoison(m);
    /* The fast path and the general one agree: the same result, the same bytes. */
    FakeMbuf general(before);
    general.get()->ol_flags = rx_flags;
    general.get()->packet_type = rx_type;
    poison_outside_data(general.get());
    const DecapResult g = detail::decap_packet_general(general.get(), outer, peers, cfg);
    unpoison(general.get());
    check(g == r && general.bytes() == fm.bytes() && general.get()->pkt_len == m->pkt_len &&
          general.get()->data_off == m->data_off && general.get()->ol_flags == m->ol_flags &&
          general.get()->packet_type == m->packet_type);

    if (split != 0)
        two_segments(before, split, r, fm.bytes());
    if (r.status != DecapStatus::ok) {
        /* A refusal must leave the frame as it was. */
        check(fm.bytes() == before);
        return 0;
    }
    check(r.from_peer == 7);
    check(m->data_len >= 14 && m->pkt_len == m->data_len && m->data_len <= size);
    check(m->data_off >= FakeMbuf::kHeadroom && m->data_off + m->data_len <= m->buf_len);

    poison_outside_data(m);
    ParsedPacket inner;
    const ParseStatus st = parse(m, inner);
    unpoison(m);
    if (st == ParseStatus::ok)
        round_trip(fm, inner);
    return 0;
}
