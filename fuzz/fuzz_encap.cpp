/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for encap_packet() (and trim_padding) with every kind
 * of template: GENEVE or IP-in-IP, outer IPv4 or IPv6, the outer IPv6 UDP
 * checksum computed or zero (udp6_zero_checksum), over one- and
 * two-segment mbufs with any headroom; decap_packet() takes the result back.
 *
 * Run it with scripts/fuzz (which builds it), or by hand from build-fuzz:
 *   build-fuzz/fuzz/fuzz_encap -max_total_time=60 /tmp/encap_work fuzz/corpus/encap
 * (libFuzzer writes new inputs to the first directory: keep it outside the tree.)
 *
 * Input: sixteen control bytes, then the frame.
 *   c[0] bit 0  IP-in-IP (else GENEVE)      bit 1  outer IPv6 (else IPv4)
 *        bit 2  udp6_zero_checksum          bit 3  two segments: the first
 *               holds 1 + (c[4..5] % (len - 1)) bytes
 *        bit 4  raw meta: l3_offset = c[12..13], l3_len = c[14..15], inner
 *               family bit 5 (a caller bug encap_packet must refuse, or
 *               survive); else the meta comes from parse_packet, as in the worker
 *        bit 6  ipv4_csum_verified for the parser
 *        bit 7  the domain inherits the DSCP (else it is c[5] & 63)
 *   c[1]        headroom of the first segment
 *   c[2..3]     template MTU (raised to the family's minimum)
 *   c[6..9]     flow hash;  c[10] hops;  c[11] ingress node
 *   c[12..15]   affinity and service version (parsed meta)
 *
 * Checks, trapping when one breaks:
 *  - memory: outside the segments' data everything is poisoned for
 *    AddressSanitizer but the headroom the outer header needs; the mbufs
 *    are on the heap;
 *  - refusal (too_big, no_headroom): the mbuf is unchanged, and the status
 *    is the one due (too_big only when the outer packet exceeds the MTU,
 *    no_headroom only when the headroom is short or meta does not describe
 *    m: the inner IP header's first 20 bytes not in the first segment, or
 *    its length past the packet);
 *  - ok: the outer Ethernet header is the template's, the outer IPv4
 *    header checksum verifies, the outer IP and UDP lengths agree with
 *    pkt_len (but for Ethernet padding spread over two segments, which must
 *    stay behind the packet), the protocol names the inner family, the
 *    outer IPv6 UDP checksum verifies (or is zero when the domain says so),
 *    the outer packet fits the MTU, the outer TOS / traffic class is the
 *    domain's DSCP (or the inner one's) and the inner ECN field;
 *  - with parsed meta, the result parses, and decap_packet() gives back an
 *    Ethernet frame holding the inner IP packet byte for byte, with the
 *    option's ingress node, hops (0 read as 1), affinity and service
 *    version (GENEVE) or the spent hop count (IP-in-IP).
 */
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "encap_builder.hpp"
#include "fuzz_mbuf.hpp"
#include "flowhome/encap.hpp"
#include "flowhome/packet.hpp"

using namespace flowhome;
using namespace flowhome::fuzz;
namespace eb = flowhome::test::eb;

namespace {

constexpr size_t kControl = 16;
constexpr NodeId kSelf = 1;
constexpr NodeId kPeer = 2;

uint16_t get16(const uint8_t *p)
{
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

EncapTemplate make_template(const uint8_t *c, TemplateParams &tp)
{
    static const uint8_t src6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t dst6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    const bool v6 = c[0] & 2;
    tp.self = kSelf;
    tp.peer = kPeer;
    tp.src_mac = MacAddr{{0x02, 0, 0, 0, 0, 0x01}};
    tp.dst_mac = MacAddr{{0x02, 0, 0, 0, 0, 0x02}};
    tp.src = v6 ? IpAddr::v6(src6) : IpAddr::v4(0x016433C6); /* 198.51.100.1 */
    tp.dst = v6 ? IpAddr::v6(dst6) : IpAddr::v4(0x026433C6); /* 198.51.100.2 */
    tp.domain.encap = (c[0] & 1) ? EncapKind::ipip : EncapKind::geneve;
    tp.domain.udp6_zero_checksum = (c[0] & 4) != 0;
    tp.domain.dscp_inherit = (c[0] & 0x80) != 0;
    tp.domain.dscp = c[5] & kMaxDscp;
    tp.mtu = std::max<uint16_t>(get16(c + 2), v6 ? 1280 : 68);
    return build_template(tp);
}

/* The UDP datagram's checksum over the IPv6 pseudo-header, computed here (RFC 8200 8.1). */
bool udp6_checksum_ok(const std::vector<uint8_t> &f, uint32_t udp, uint32_t udp_len)
{
    return eb::fold(eb::sum_words(f.data() + udp, udp_len, eb::pseudo6_at(f, 14, 17, udp_len))) ==
           0xFFFF;
}

void round_trip(const Frame &fr, const TemplateParams &tp, const EncapMeta &meta,
                const std::vector<uint8_t> &inner_ip, uint32_t padding_left)
{
    rte_mbuf *m = fr.get();
    ParsedPacket outer;
    poison_outside_data(m);
    check(parse_packet(rte_pktmbuf_mtod(m, const uint8_t *), m->data_len, m->pkt_len, outer) ==
          ParseStatus::ok);
    PeerDirectory peers;
    peers.add(tp.src, kSelf);
    DecapConfig cfg;
    (tp.dst.family == Family::ipv4 ? cfg.local_v4 : cfg.local_v6) = tp.dst;
    cfg.geneve_port = tp.domain.geneve_port;
    const DecapResult r = decap_packet(m, outer, peers, cfg);
    unpoison(m);

    check(r.status == DecapStatus::ok && r.from_peer == kSelf);
    if (tp.domain.encap == EncapKind::geneve) {
        check(r.ingress_node == meta.ingress_node &&
              r.hops == std::max<uint8_t>(meta.hops, 1)); /* through a tunnel: a hop */
        check(r.affinity == meta.affinity && r.service_version == meta.service_version);
    } else {
        check(r.ingress_node == kSelf && r.hops == kHopsSpent);
    }
    const std::vector<uint8_t> f = fr.head->packet_bytes();
    check(f.size() == m->pkt_len && f.size() == 14 + inner_ip.size() + padding_left);
    check(eb::get16(f, 12) ==
          (meta.inner_family == Family::ipv4 ? kEtherTypeIpv4 : kEtherTypeIpv6));
    check(std::equal(inner_ip.begin(), inner_ip.end(), f.begin() + 14));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size <= kControl)
        return 0;
    const uint8_t *c = data;
    const std::vector<uint8_t> frame(data + kControl, data + size);
    const uint16_t headroom = c[1];
    if (headroom + frame.size() > FakeMbuf::kBufLen)
        return 0;
    const size_t split = (c[0] & 8) && frame.size() > 1 ? 1 + get16(c + 4) % (frame.size() - 1) : 0;
    const bool raw = c[0] & 0x10;

    TemplateParams tp;
    const EncapTemplate t = make_template(c, tp);
    Frame fr(frame, headroom, split);
    rte_mbuf *m = fr.get();

    EncapMeta meta;
    meta.flow_hash = static_cast<uint32_t>(get16(c + 6)) << 16 | get16(c + 8);
    meta.hops = c[10];
    meta.ingress_node = c[11];
    if (raw) {
        meta.l3_offset = get16(c + 12);
        meta.l3_len = get16(c + 14);
        meta.inner_family = (c[0] & 0x20) ? Family::ipv6 : Family::ipv4;
    } else {
        ParsedPacket p;
        poison_outside_data(m);
        const ParseStatus st = parse_packet(rte_pktmbuf_mtod(m, const uint8_t *), m->data_len,
                                            m->pkt_len, p, c[0] & 0x40);
        unpoison(m);
        if (st != ParseStatus::ok)
            return 0;
        meta.l3_offset = p.l3_offset;
        meta.l3_len = p.l3_len;
        meta.inner_family = p.family;
        meta.affinity = get16(c + 12);
        meta.service_version = get16(c + 14);
    }

    /* What the outcome must be, from the documented contract. */
    const bool describes = meta.l3_offset >= 14 && meta.l3_offset + 20u <= m->data_len &&
                           uint32_t{meta.l3_offset} + meta.l3_len <= m->pkt_len;
    const uint32_t ip_len = uint32_t{t.write_len} - 14 + meta.l3_len;
    const int grow = int{t.write_len} - int{meta.l3_offset};
    const bool fits_headroom = grow <= int{headroom};
    const uint32_t excess = m->pkt_len - (uint32_t{meta.l3_offset} + meta.l3_len);
    const uint32_t last_len = fr.chained() ? fr.tail->get()->data_len : m->data_len;
    const uint32_t padding_left = describes && excess > last_len ? excess : 0;
    std::vector<uint8_t> inner_ip;
    if (describes)
        inner_ip.assign(frame.begin() + meta.l3_offset,
                        frame.begin() + meta.l3_offset + meta.l3_len);

    const Snapshot before(fr);
    poison_outside_data(m, grow > 0 ? static_cast<uint32_t>(grow) : 0);
    const EncapStatus st = encap_packet(m, t, meta);
    unpoison(m);

    if (st != EncapStatus::ok) {
        check(Snapshot(fr) == before);
        if (st == EncapStatus::too_big)
            check(describes && ip_len > t.mtu);
        else
            check(!describes || (ip_len <= t.mtu && !fits_headroom));
        return 0;
    }
    check(describes && ip_len <= t.mtu && fits_headroom);
    check(m->data_off + uint32_t{m->data_len} <= m->buf_len);
    const std::vector<uint8_t> f = fr.head->packet_bytes();
    check(f.size() == m->pkt_len);
    check(m->l2_len == 14 && m->l3_len == (tp.dst.family == Family::ipv4 ? 20 : 40));
    check(std::equal(f.begin(), f.begin() + 14, t.header));

    /* Outer lengths: the whole packet, but padding that could not be trimmed. */
    const uint32_t outer_len = m->pkt_len - 14 - padding_left;
    check(outer_len == ip_len && outer_len <= t.mtu);
    const bool geneve = t.kind == EncapKind::geneve;
    const uint8_t inner_proto = meta.inner_family == Family::ipv6 ? kProtoIpv6 : kProtoIpip;
    uint32_t ip_hdr;
    if (tp.dst.family == Family::ipv4) {
        ip_hdr = 20;
        check(eb::fold(eb::sum_words(f.data() + 14, 20)) == 0xFFFF);
        check(eb::get16(f, 16) == outer_len);
        check(f[23] == (geneve ? kProtoUdp : inner_proto));
    } else {
        ip_hdr = 40;
        check(eb::get16(f, 18) == outer_len - 40);
        check(f[20] == (geneve ? kProtoUdp : inner_proto));
        check((eb::get32(f, 14) & 0xFFFFF) == (meta.flow_hash & 0xFFFFF));
    }
    /* RFC 6040 normal mode: the inner ECN field, and the domain's DSCP or
     * the inner one. The inner header's first bytes, as they lay in the
     * frame (within the first segment: describes). */
    const uint8_t *inner = frame.data() + meta.l3_offset;
    const uint8_t inner_tos = meta.inner_family == Family::ipv6
                                  ? static_cast<uint8_t>(eb::get16(frame, meta.l3_offset) >> 4)
                                  : inner[1];
    const uint8_t want_tos = tp.domain.dscp_inherit
                                 ? inner_tos
                                 : static_cast<uint8_t>(tp.domain.dscp << 2 | (inner_tos & 3));
    const uint8_t outer_tos =
        tp.dst.family == Family::ipv4 ? f[15] : static_cast<uint8_t>(eb::get16(f, 14) >> 4);
    check(outer_tos == want_tos);
    if (geneve) {
        const uint32_t udp = 14 + ip_hdr;
        const uint32_t udp_len = outer_len - ip_hdr;
        check(eb::get16(f, udp + 4) == udp_len);
        check(eb::get16(f, udp) == 49152 + (meta.flow_hash & 16383));
        if (tp.dst.family == Family::ipv6 && !tp.domain.udp6_zero_checksum)
            check(udp6_checksum_ok(f, udp, udp_len));
        else
            check(eb::get16(f, udp + 6) == 0);
    }
    if (!raw)
        round_trip(fr, tp, meta, inner_ip, padding_left);
    return 0;
}
