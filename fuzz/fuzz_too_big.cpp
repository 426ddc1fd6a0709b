/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for make_packet_too_big() on any frame the parser
 * accepts, as the worker calls it (parse_packet, then the ICMP error in
 * place): VLAN tags, IPv4 options, IPv6 extension headers, any ICMP, short
 * headroom, and frames whose first segment ends early (two segments).
 *
 * Run it with scripts/fuzz (which builds it), or by hand from build-fuzz:
 *   build-fuzz/fuzz/fuzz_too_big -max_total_time=60 /tmp/too_big_work fuzz/corpus/too_big
 * (libFuzzer writes new inputs to the first directory: keep it outside the tree.)
 *
 * Input: six control bytes, then the frame.
 *   c[0]        headroom of the first segment (0..255)
 *   c[1..2]     the MTU handed over (big-endian, any value)
 *   c[3] bit 0  ipv4_csum_verified for the parser
 *        bit 1  no local IPv4 address;  bit 2  no local IPv6 address
 *        bit 3  two segments: the first holds 1 + (c[4..5] % (len - 1)) bytes;
 *               the tail has two references, so that the function's
 *               rte_pktmbuf_free() of it only drops one (checked)
 *
 * Checks, trapping when one breaks:
 *  - memory: every byte outside the segments' data is poisoned for
 *    AddressSanitizer, but for the 28 (IPv4) / 48 (IPv6) bytes of headroom
 *    the error's new headers may take; the mbufs are on the heap;
 *  - refusal: the mbuf is unchanged; and it must refuse (whatever else)
 *    an ICMP / ICMPv6 error or a packet whose ICMP type it cannot see, an
 *    IPv4 packet without DF or a later fragment, a non-host source, an IPv4
 *    multicast / broadcast destination or link-layer multicast frame, a
 *    family without a local address, too little headroom;
 *  - success: the result parses (checksum verified) with the same family
 *    and L2 header (VLAN tags kept, MAC addresses swapped), it is one
 *    segment (the tail dropped, exactly one reference), its IP length is at
 *    most 576 (IPv4) / 1280 (IPv6) bytes and agrees with pkt_len, the IPv4
 *    header and ICMP / ICMPv6 checksums verify (computed here, not with
 *    flowhome's code), type / code / MTU are RFC 1191 / RFC 4443's, it goes
 *    from our address to the original source, and the quote is the
 *    original IP packet's first bytes, as many as fit.
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

constexpr size_t kControl = 6;
constexpr uint8_t kOur4[4] = {192, 0, 2, 1};
constexpr uint8_t kOur6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

bool is_icmp4_error_type(uint8_t t)
{
    return t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
}

/* Everything that forbids an error, from the RFCs, independent of how the code checks it. */
bool must_refuse(const std::vector<uint8_t> &f, uint32_t seg_len, const ParsedPacket &p,
                 const DecapConfig &local, uint32_t headroom)
{
    const uint8_t *ip = f.data() + p.l3_offset;
    const bool icmp = p.l4_proto == (p.family == Family::ipv4 ? kProtoIcmp : kProtoIcmpv6);
    const bool type_unseen = p.later_fragment || p.l4_offset == 0 || p.l4_offset >= seg_len;
    if (p.family == Family::ipv4) {
        if (!local.local_v4 || headroom < 28 || !p.dont_fragment || p.later_fragment)
            return true;
        if (icmp && (type_unseen || is_icmp4_error_type(f[p.l4_offset])))
            return true;
        const uint8_t s = ip[12];
        return (f[0] & 1) != 0 || ip[16] >= 224 || s == 0 || s == 127 || s >= 224;
    }
    if (!local.local_v6 || headroom < 48)
        return true;
    if (icmp && (type_unseen || f[p.l4_offset] < 128))
        return true;
    /* Multicast, ::, ::1 (RFC 4291 2.5.3) and IPv4-mapped (2.5.5.2). */
    static constexpr uint8_t zero[16] = {};
    const uint8_t *s = ip + 8;
    const bool unspecified_or_loopback = std::memcmp(s, zero, 15) == 0 && s[15] <= 1;
    const bool mapped = std::memcmp(s, zero, 10) == 0 && s[10] == 0xFF && s[11] == 0xFF;
    return s[0] == 0xFF || unspecified_or_loopback || mapped;
}

void check_error(const Frame &fr, const std::vector<uint8_t> &orig, uint32_t orig_seg_len,
                 const ParsedPacket &p, uint16_t mtu)
{
    rte_mbuf *m = fr.get();
    check(m->nb_segs == 1 && m->next == nullptr && m->pkt_len == m->data_len);
    check(m->data_off + uint32_t{m->data_len} <= m->buf_len);
    if (fr.chained())
        check(rte_mbuf_refcnt_read(fr.tail->get()) == 1); /* released exactly once */
    const std::vector<uint8_t> f = fr.head->packet_bytes();

    ParsedPacket e;
    check(parse_packet(f.data(), static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()),
                       e) == ParseStatus::ok);
    check(e.family == p.family && e.l3_offset == p.l3_offset && !e.fragment);
    check(uint32_t{e.l3_offset} + e.l3_len == f.size());
    /* L2: MAC addresses swapped, tags and ether type as they were. */
    check(std::equal(f.begin(), f.begin() + 6, orig.begin() + 6));
    check(std::equal(f.begin() + 6, f.begin() + 12, orig.begin()));
    check(std::equal(f.begin() + 12, f.begin() + p.l3_offset, orig.begin() + 12));

    const uint8_t *ip = f.data() + e.l3_offset;
    const uint8_t *oip = orig.data() + p.l3_offset;
    const bool v4 = p.family == Family::ipv4;
    const uint32_t hdr = v4 ? 28 : 48;
    check(e.l3_len <= (v4 ? 576u : 1280u));
    /* The quote: the original packet's first bytes, as many as fit. */
    const uint32_t quote = e.l3_len - hdr;
    check(quote ==
          std::min({uint32_t{p.l3_len}, (v4 ? 576u : 1280u) - hdr, orig_seg_len - p.l3_offset}));
    check(std::memcmp(ip + hdr, oip, quote) == 0);
    const uint8_t *icmp = ip + hdr - 8;
    if (v4) {
        check(e.l4_proto == kProtoIcmp && e.dont_fragment);
        check(eb::fold(eb::sum_words(ip, 20)) == 0xFFFF);
        check(std::memcmp(ip + 12, kOur4, 4) == 0 && std::memcmp(ip + 16, oip + 12, 4) == 0);
        check(icmp[0] == 3 && icmp[1] == 4);
        check(eb::fold(eb::sum_words(icmp, 8 + quote)) == 0xFFFF);
        check((icmp[6] << 8 | icmp[7]) == std::max<uint16_t>(mtu, 68));
    } else {
        check(e.l4_proto == kProtoIcmpv6 && e.l4_offset == e.l3_offset + 40);
        check(std::memcmp(ip + 8, kOur6, 16) == 0 && std::memcmp(ip + 24, oip + 8, 16) == 0);
        check(icmp[0] == 2 && icmp[1] == 0);
        const uint32_t len = 8 + quote;
        check(eb::fold(eb::sum_words(icmp, len, eb::pseudo6_at(f, e.l3_offset, 58, len))) ==
              0xFFFF);
        const uint32_t got = uint32_t{icmp[4]} << 24 | icmp[5] << 16 | icmp[6] << 8 | icmp[7];
        check(got == std::max<uint32_t>(mtu, 1280));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size <= kControl)
        return 0;
    const std::vector<uint8_t> frame(data + kControl, data + size);
    const uint16_t headroom = data[0];
    if (headroom + frame.size() > FakeMbuf::kBufLen)
        return 0;
    const auto mtu = static_cast<uint16_t>(data[1] << 8 | data[2]);
    const uint8_t flags = data[3];
    const size_t split =
        (flags & 8) && frame.size() > 1 ? 1 + (data[4] << 8 | data[5]) % (frame.size() - 1) : 0;
    DecapConfig local;
    if (!(flags & 2))
        local.local_v4 = IpAddr::v4(
            static_cast<uint32_t>(kOur4[0] | kOur4[1] << 8 | kOur4[2] << 16 | kOur4[3] << 24));
    if (!(flags & 4))
        local.local_v6 = IpAddr::v6(kOur6);

    Frame fr(frame, headroom, split, 2);
    rte_mbuf *m = fr.get();
    const uint32_t seg_len = m->data_len;
    ParsedPacket p;
    poison_outside_data(m);
    const ParseStatus st =
        parse_packet(rte_pktmbuf_mtod(m, const uint8_t *), seg_len, m->pkt_len, p, flags & 1);
    unpoison(m);
    if (st != ParseStatus::ok)
        return 0;

    const Snapshot before(fr);
    poison_outside_data(m, p.family == Family::ipv4 ? 28 : 48);
    const bool made = make_packet_too_big(m, p, mtu, local);
    unpoison(m);
    if (!made) {
        check(Snapshot(fr) == before);
        if (fr.chained())
            check(rte_mbuf_refcnt_read(fr.tail->get()) == 2);
        return 0;
    }
    check(!must_refuse(frame, seg_len, p, local, headroom));
    check_error(fr, frame, seg_len, p, mtu);
    return 0;
}
