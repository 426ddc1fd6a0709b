/* SPDX-License-Identifier: BSD-3-Clause */
/* Gossip wire format: round trips, every malformed case, compatibility. */
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "gossip_test_util.hpp"

using namespace flowhome;
using namespace flowhome::test;

namespace {

constexpr NodeId kSender = 3;

std::vector<GossipRecord> read_all(FrameReader &r)
{
    std::vector<GossipRecord> out;
    GossipRecord rec;
    while (r.next(rec))
        out.push_back(rec);
    return out;
}

GossipStatus open_status(const std::vector<uint8_t> &frame)
{
    FrameReader r;
    return r.open(frame);
}

/* A frame holding one record of each type, both families where a key occurs. */
std::vector<uint8_t> every_record_body(uint64_t seq = 42)
{
    return body_of(header_of(kSender, seq), [](FrameWriter &w) {
        REQUIRE(w.add_claim({key4(1), kSender, 1}));
        REQUIRE(w.add_claim({key6(2), kSender, 0xFFFF}));
        REQUIRE(w.add_release({key4(3, kProtoUdp), kSender, 9}));
        REQUIRE(w.add_release({key6(4, kProtoTcp), kSender, 10}));
        REQUIRE(w.add_digest({kSender, 123456, 0x0123456789ABCDEFull}));
        HeartbeatRecord hb;
        hb.node = kSender;
        hb.state = NodeState::alive;
        hb.draining = true;
        hb.incarnation = 7;
        hb.counter = 99;
        const std::vector<MemberView> views{{1, NodeState::alive, false, 5},
                                            {2, NodeState::suspect, true, 6},
                                            {4095, NodeState::dead, false, 0xFFFFFFFF}};
        REQUIRE(w.add_heartbeat(hb, views));
        REQUIRE(w.add_sync_request({5, 2, 0xDEADBEEF, 0x1122334455667788ull}));
        REQUIRE(w.begin_sync_response(5, 77));
        REQUIRE(w.add_sync_entry({key4(10), 2, 3}));
        REQUIRE(w.add_sync_entry({key6(11), 4095, 4}));
        REQUIRE(w.add_sync_entry({key4(12, kProtoUdp), 1, 5, true, 17}));
        w.end_sync_response(0xAABBCCDD00000001ull);
    });
}

} // namespace

TEST_CASE("every record type round-trips, both families", "[gossip][codec]")
{
    const std::vector<uint8_t> frame = with_zero_tag(every_record_body());
    FrameReader r;
    REQUIRE(r.open(frame) == GossipStatus::ok);
    const FrameHeader &h = r.header();
    CHECK(h.version_major == kGossipVersionMajor);
    CHECK(h.version_minor == kGossipVersionMinor);
    CHECK(h.cluster_id == kTestCluster);
    CHECK(h.sender == kSender);
    CHECK(h.key_id == kTestKeyId);
    CHECK(h.incarnation == 7);
    CHECK(h.sequence == 42);
    CHECK(h.record_count == 8);
    CHECK(r.signed_bytes().size() + kGossipTagLen == frame.size());
    CHECK(r.unknown_records() == 0);

    const std::vector<GossipRecord> recs = read_all(r);
    REQUIRE(recs.size() == 8);
    CHECK(recs[0].type == RecordType::claim);
    CHECK(recs[0].flow == FlowEntry{key4(1), kSender, 1});
    CHECK(recs[1].type == RecordType::claim);
    CHECK(recs[1].flow == FlowEntry{key6(2), kSender, 0xFFFF});
    CHECK(recs[2].type == RecordType::release);
    CHECK(recs[2].flow == FlowEntry{key4(3, kProtoUdp), kSender, 9});
    CHECK(recs[3].type == RecordType::release);
    CHECK(recs[3].flow == FlowEntry{key6(4, kProtoTcp), kSender, 10});
    CHECK(recs[4].type == RecordType::digest);
    CHECK(recs[4].digest == DigestRecord{kSender, 123456, 0x0123456789ABCDEFull});

    REQUIRE(recs[5].type == RecordType::heartbeat);
    const HeartbeatRecord &hb = recs[5].heartbeat;
    CHECK(hb.node == kSender);
    CHECK(hb.state == NodeState::alive);
    CHECK(hb.draining);
    CHECK(hb.incarnation == 7);
    CHECK(hb.counter == 99);
    REQUIRE(hb.view_count == 3);
    MemberViewCursor views = hb.views;
    MemberView v;
    REQUIRE(views.next(v));
    CHECK(v == MemberView{1, NodeState::alive, false, 5});
    REQUIRE(views.next(v));
    CHECK(v == MemberView{2, NodeState::suspect, true, 6});
    REQUIRE(views.next(v));
    CHECK(v == MemberView{4095, NodeState::dead, false, 0xFFFFFFFF});
    CHECK_FALSE(views.next(v));

    REQUIRE(recs[6].type == RecordType::sync_request);
    CHECK(recs[6].sync_request == SyncRequestRecord{5, 2, 0xDEADBEEF, 0x1122334455667788ull});

    REQUIRE(recs[7].type == RecordType::sync_response);
    const SyncResponseRecord &s = recs[7].sync_response;
    CHECK(s.requester == 5);
    CHECK(s.request_id == 77);
    CHECK(s.entry_count == 3);
    CHECK(s.next_cursor == 0xAABBCCDD00000001ull);
    FlowEntryCursor entries = s.entries;
    FlowEntry e;
    REQUIRE(entries.next(e));
    CHECK(e == FlowEntry{key4(10), 2, 3});
    REQUIRE(entries.next(e));
    CHECK(e == FlowEntry{key6(11), 4095, 4});
    REQUIRE(entries.next(e));
    CHECK(e == FlowEntry{key4(12, kProtoUdp), 1, 5, true, 17});
    CHECK_FALSE(entries.next(e));
}

TEST_CASE("a flow entry's flags: bit 0 marks a tombstone, bits 1..15 its age; a claim's bit 1 a "
          "move",
          "[gossip][codec]")
{
    std::vector<uint8_t> b = with_zero_tag(body_of(header_of(kSender, 1), [](FrameWriter &w) {
        REQUIRE(w.begin_sync_response(5, 77));
        REQUIRE(w.add_sync_entry({key4(10), 2, 3, true, 300}));
        REQUIRE(w.add_sync_entry({key4(11), 2, 3, true, 40000})); /* saturates */
        REQUIRE(w.add_sync_entry({key4(12), 2, 3, false, 300}));  /* a claim has no age */
        REQUIRE(w.add_sync_entry({key4(13), 2, 3, false, 0, true}));
        REQUIRE(w.add_sync_entry({key4(14), 2, 3, true, 1, true})); /* a tombstone is no move */
        w.end_sync_response(0);
    }));
    /* Header, TLV header, the response's fixed fields, then the entries. */
    const size_t flags = kGossipHeaderLen + kGossipTlvLen + 16 + gossip_flow::flags;
    const size_t next = gossip_flow::size_v4;
    CHECK(b[flags] == 0x02); /* 300 << 1 | 1 = 0x0259 */
    CHECK(b[flags + 1] == 0x59);
    CHECK(b[flags + next] == 0xFF);
    CHECK(b[flags + next + 1] == 0xFF);
    CHECK(b[flags + 2 * next] == 0);
    CHECK(b[flags + 2 * next + 1] == 0);
    CHECK(b[flags + 3 * next] == 0);
    CHECK(b[flags + 3 * next + 1] == 0x02);
    CHECK(b[flags + 4 * next + 1] == 0x03);
    const auto nth = [&b](size_t i) {
        FrameReader r;
        REQUIRE(r.open(b) == GossipStatus::ok);
        GossipRecord rec;
        REQUIRE(r.next(rec));
        FlowEntry e;
        for (size_t j = 0; j <= i; ++j)
            REQUIRE(rec.sync_response.entries.next(e));
        return e;
    };
    const auto first = [&nth] { return nth(0); };
    CHECK(nth(3) == FlowEntry{key4(13), 2, 3, false, 0, true});
    CHECK(nth(4) == FlowEntry{key4(14), 2, 3, true, 1, false});
    CHECK_FALSE(nth(2).moved);
    CHECK(first().released);
    CHECK(first().age_s == 300);
    b[flags] = 0xFF;
    b[flags + 1] = 0xFE; /* bit 0 clear: a claim, whatever the rest but bit 1 */
    CHECK_FALSE(first().released);
    CHECK(first().age_s == 0);
    CHECK(first().moved);
    b[flags + 1] = 0xFC;
    CHECK_FALSE(first().moved);
    b[flags + 1] = 0xFF;
    CHECK(first().released);
    CHECK(first().age_s == gossip_flow::max_age_s);
}

TEST_CASE("the header is big endian at the documented offsets", "[gossip][codec]")
{
    const std::vector<uint8_t> b = every_record_body(0x0102030405060708ull);
    const std::vector<uint8_t> expect{
        'F', 'H', 'G', 'S', 1, kGossipVersionMinor, 32, 0, 0x0F, 0x1E, 0x2D, 0x3C, 0, 3, 0, 1, 0,
        0,   0,   7,   0,   8};
    REQUIRE(std::vector<uint8_t>(b.begin(), b.begin() + 22) == expect);
    CHECK(size_t{b[gossip_hdr::payload_length]} * 256 + b[gossip_hdr::payload_length + 1] ==
          b.size() - kGossipHeaderLen);
    CHECK(std::vector<uint8_t>(b.begin() + 24, b.begin() + 32) ==
          std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8});
    /* First record: TLV claim, 20-byte v4 entry: family 4, proto 6, owner 3, version 1. */
    CHECK(std::vector<uint8_t>(b.begin() + 32, b.begin() + 42) ==
          std::vector<uint8_t>{1, 0, 0, 20, 4, 6, 0, 3, 0, 1});
}

TEST_CASE("a frame truncated at any byte is rejected as truncated", "[gossip][codec]")
{
    const std::vector<uint8_t> frame = with_zero_tag(every_record_body());
    for (size_t n = 0; n < frame.size(); ++n) {
        /* Exact-size copy: a read past n would be caught by ASan builds. */
        const std::vector<uint8_t> cut(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(n));
        INFO("length " << n);
        REQUIRE(open_status(cut) == GossipStatus::truncated);
    }
    REQUIRE(open_status(frame) == GossipStatus::ok);
}

TEST_CASE("a payload cut short inside a record is rejected by name", "[gossip][codec]")
{
    /* Consistent lengths, but the record region ends early: the TLV walk
     * itself must notice. At a record boundary only the count disagrees. */
    const std::vector<uint8_t> body = every_record_body();
    const size_t payload = body.size() - kGossipHeaderLen;
    std::set<size_t> boundaries;
    for (size_t off = kGossipHeaderLen; off < body.size();
         off += kGossipTlvLen + (body[off + 2] * 256u + body[off + 3]))
        boundaries.insert(off - kGossipHeaderLen);
    REQUIRE(boundaries.size() == 8);
    for (size_t cut = 0; cut < payload; ++cut) {
        std::vector<uint8_t> b(body.begin(),
                               body.begin() + static_cast<ptrdiff_t>(kGossipHeaderLen + cut));
        put16(b, gossip_hdr::payload_length, static_cast<uint16_t>(cut));
        const GossipStatus s = open_status(with_zero_tag(b));
        INFO("payload cut at " << cut << ": " << gossip_status_name(s));
        if (boundaries.count(cut) != 0)
            REQUIRE(s == GossipStatus::record_count_mismatch);
        else
            REQUIRE((s == GossipStatus::record_truncated || s == GossipStatus::bad_record_length ||
                     s == GossipStatus::bad_entry_count));
    }
}

TEST_CASE("header checks name the rule the frame broke", "[gossip][codec]")
{
    struct Case {
        const char *what;
        size_t offset;
        uint8_t value;
        GossipStatus expect;
    };
    const Case cases[] = {
        {"magic", gossip_hdr::magic + 3, 'X', GossipStatus::bad_magic},
        {"major version 2", gossip_hdr::version_major, 2, GossipStatus::bad_version},
        {"major version 0", gossip_hdr::version_major, 0, GossipStatus::bad_version},
        {"minor version + 1", gossip_hdr::version_minor, kGossipVersionMinor + 1, GossipStatus::ok},
        {"minor version + 2", gossip_hdr::version_minor, kGossipVersionMinor + 2,
         GossipStatus::bad_version},
        {"minor version 255 (-1 wraps)", gossip_hdr::version_minor, 255, GossipStatus::bad_version},
        {"header length 31", gossip_hdr::header_len, 31, GossipStatus::bad_header_length},
        {"header length 0", gossip_hdr::header_len, 0, GossipStatus::bad_header_length},
        {"sender 0", gossip_hdr::sender + 1, 0, GossipStatus::bad_sender},
        {"sender 0x1003", gossip_hdr::sender, 0x10, GossipStatus::bad_sender},
        {"record count + 1", gossip_hdr::record_count + 1, 9, GossipStatus::record_count_mismatch},
        {"flags (bare frames)", gossip_hdr::flags, 0xFF, GossipStatus::ok},
    };
    const std::vector<uint8_t> good = with_zero_tag(every_record_body());
    for (const Case &c : cases) {
        std::vector<uint8_t> b = good;
        b[c.offset] = c.value;
        INFO(c.what);
        CHECK(open_status(b) == c.expect);
    }
    std::vector<uint8_t> longer = good;
    longer.push_back(0);
    CHECK(open_status(longer) == GossipStatus::bad_length);
    CHECK(open_status({'F', 'H', 'G'}) == GossipStatus::truncated);
    CHECK(open_status({'G', 'E', 'T', ' ', '/'}) == GossipStatus::bad_magic);
}

TEST_CASE("gossip_version_compatible accepts one minor step either way", "[gossip][codec]")
{
    CHECK(gossip_version_compatible(1, 0, 1, 0));
    CHECK(gossip_version_compatible(1, 1, 1, 0));
    CHECK_FALSE(gossip_version_compatible(1, 2, 1, 0));
    CHECK_FALSE(gossip_version_compatible(2, 0, 1, 0));
    CHECK(gossip_version_compatible(1, 2, 1, 3));
    CHECK(gossip_version_compatible(1, 4, 1, 3));
    CHECK_FALSE(gossip_version_compatible(1, 1, 1, 3));
    CHECK_FALSE(gossip_version_compatible(1, 5, 1, 3));
    CHECK_FALSE(gossip_version_compatible(0, 3, 1, 3));
}

TEST_CASE("the header's flags name bare frames from 1.3 on", "[gossip][codec]")
{
    FrameHeader h = header_of(kSender, 9);
    h.bare_below = 0xA5;
    std::vector<uint8_t> b = body_of(h, [](FrameWriter &w) {
        REQUIRE(w.add_claim({key4(1), kSender, 1}));
    });
    CHECK(b[gossip_hdr::flags] == 0xA5);
    FrameHeader out;
    REQUIRE(decode_gossip_header(with_zero_tag(b), out) == GossipStatus::ok);
    CHECK(out.bare_below == 0xA5);

    /* Reserved before: whatever an earlier minor sent, nothing is known bare. */
    b[gossip_hdr::version_minor] = kGossipMinorBareFrames - 1;
    REQUIRE(decode_gossip_header(with_zero_tag(b), out) == GossipStatus::ok);
    CHECK(out.bare_below == 0);
    h.version_minor = kGossipMinorBareFrames - 1;
    CHECK(body_of(h, [](FrameWriter &) {})[gossip_hdr::flags] == 0);
}

TEST_CASE("a newer minor's longer header and longer records are accepted", "[gossip][codec]")
{
    /* Version 1.1 might append 8 header bytes and 4 bytes to a claim. */
    std::vector<uint8_t> b = every_record_body();
    b.insert(b.begin() + kGossipHeaderLen, 8, 0xEE);
    b[gossip_hdr::header_len] = kGossipHeaderLen + 8;
    b[gossip_hdr::version_minor] = kGossipVersionMinor + 1;
    FrameReader r;
    /* The reader keeps a view of the frame: the frame must outlive it. */
    const std::vector<uint8_t> longer = with_zero_tag(b);
    REQUIRE(r.open(longer) == GossipStatus::ok);
    CHECK(read_all(r).size() == 8);

    std::vector<uint8_t> value(gossip_flow::size_v4 + 4, 0xAB);
    const std::vector<uint8_t> claim_body = body_of(header_of(kSender, 1), [](FrameWriter &w) {
        REQUIRE(w.add_claim({key4(77), kSender, 5}));
    });
    std::copy(claim_body.begin() + kGossipHeaderLen + kGossipTlvLen, claim_body.end(),
              value.begin());
    const std::vector<uint8_t> ext = body_of(header_of(kSender, 1), [&](FrameWriter &w) {
        REQUIRE(w.add_raw(static_cast<uint8_t>(RecordType::claim), value));
    });
    const std::vector<uint8_t> frame = with_zero_tag(ext);
    REQUIRE(r.open(frame) == GossipStatus::ok);
    const std::vector<GossipRecord> recs = read_all(r);
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].flow == FlowEntry{key4(77), kSender, 5});
}

TEST_CASE("unknown record types are skipped and counted", "[gossip][codec]")
{
    const std::vector<uint8_t> blob{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const std::vector<uint8_t> b = body_of(header_of(kSender, 1), [&](FrameWriter &w) {
        REQUIRE(w.add_raw(200, blob));
        REQUIRE(w.add_claim({key4(1), kSender, 1}));
        REQUIRE(w.add_raw(0, {}));
        REQUIRE(w.add_digest({kSender, 1, 2}));
        REQUIRE(w.add_raw(255, blob));
    });
    FrameReader r;
    /* The reader keeps a view of the frame: the frame must outlive it. */
    const std::vector<uint8_t> frame = with_zero_tag(b);
    REQUIRE(r.open(frame) == GossipStatus::ok);
    CHECK(r.unknown_records() == 3);
    const std::vector<GossipRecord> recs = read_all(r);
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].type == RecordType::claim);
    CHECK(recs[1].type == RecordType::digest);
}

TEST_CASE("malformed records are rejected by name", "[gossip][codec]")
{
    const std::vector<uint8_t> claim = [] {
        const std::vector<uint8_t> b = body_of(header_of(kSender, 1), [](FrameWriter &w) {
            REQUIRE(w.add_claim({key4(1), kSender, 1}));
        });
        return std::vector<uint8_t>(b.begin() + kGossipHeaderLen + kGossipTlvLen, b.end());
    }();
    const std::vector<uint8_t> hb_value = [] {
        const std::vector<uint8_t> b = body_of(header_of(kSender, 1), [](FrameWriter &w) {
            const MemberView views[] = {{1, NodeState::alive, false, 1}};
            REQUIRE(w.add_heartbeat({kSender, NodeState::alive, false, 7, 1, 0, {}}, views));
        });
        return std::vector<uint8_t>(b.begin() + kGossipHeaderLen + kGossipTlvLen, b.end());
    }();
    std::vector<uint8_t> sync_resp(kSyncResponseFixedLen, 0);
    put16(sync_resp, 0, 5);
    put16(sync_resp, 2, 1); /* says one entry */
    sync_resp.insert(sync_resp.end(), claim.begin(), claim.end());

    struct Case {
        const char *what;
        RecordType type;
        std::vector<uint8_t> value;
        GossipStatus expect;
    };
    auto patched = [](std::vector<uint8_t> v, size_t off, uint8_t x) {
        v[off] = x;
        return v;
    };
    auto cut = [](std::vector<uint8_t> v, size_t n) {
        v.resize(n);
        return v;
    };
    auto grown = [](std::vector<uint8_t> v, size_t n) {
        v.resize(v.size() + n, 0);
        return v;
    };
    const std::vector<Case> cases{
        {"claim, valid", RecordType::claim, claim, GossipStatus::ok},
        {"claim, family 5", RecordType::claim, patched(claim, 0, 5), GossipStatus::bad_family},
        {"claim, family 6 in a v4-sized value", RecordType::claim, patched(claim, 0, 6),
         GossipStatus::bad_record_length},
        {"claim, empty", RecordType::claim, {}, GossipStatus::bad_record_length},
        {"claim, short", RecordType::claim, cut(claim, 19), GossipStatus::bad_record_length},
        {"claim, owner 0", RecordType::claim, patched(claim, 3, 0), GossipStatus::bad_node},
        {"claim, owner is not the sender", RecordType::claim, patched(claim, 3, 4),
         GossipStatus::foreign_owner},
        {"release, owner is not the sender", RecordType::release, patched(claim, 3, 4),
         GossipStatus::foreign_owner},
        {"claim, owner 0x1003", RecordType::claim, patched(claim, 2, 0x10), GossipStatus::bad_node},
        {"digest, short", RecordType::digest, std::vector<uint8_t>(15, 0),
         GossipStatus::bad_record_length},
        {"digest, owner 0", RecordType::digest, std::vector<uint8_t>(16, 0),
         GossipStatus::bad_node},
        {"heartbeat, valid", RecordType::heartbeat, hb_value, GossipStatus::ok},
        {"heartbeat, partial view", RecordType::heartbeat, grown(hb_value, 3),
         GossipStatus::bad_record_length},
        {"heartbeat, short", RecordType::heartbeat, cut(hb_value, 11),
         GossipStatus::bad_record_length},
        {"heartbeat, state 3", RecordType::heartbeat, patched(hb_value, 2, 3),
         GossipStatus::bad_state},
        {"heartbeat, view state 9", RecordType::heartbeat, patched(hb_value, 14, 9),
         GossipStatus::bad_state},
        {"heartbeat, view node 0", RecordType::heartbeat, patched(hb_value, 13, 0),
         GossipStatus::bad_node},
        {"heartbeat, another node", RecordType::heartbeat, patched(hb_value, 1, 4),
         GossipStatus::foreign_owner},
        {"heartbeat, other incarnation", RecordType::heartbeat, patched(hb_value, 7, 8),
         GossipStatus::incarnation_mismatch},
        {"sync request, short", RecordType::sync_request, std::vector<uint8_t>(15, 0),
         GossipStatus::bad_record_length},
        {"sync request, target 0", RecordType::sync_request, std::vector<uint8_t>(16, 0),
         GossipStatus::bad_node},
        {"sync request, owner filter 0x1000", RecordType::sync_request,
         patched(patched(std::vector<uint8_t>(16, 0), 1, 5), 2, 0x10), GossipStatus::bad_node},
        {"sync response, valid", RecordType::sync_response, sync_resp, GossipStatus::ok},
        {"sync response, count 2 for 1 entry", RecordType::sync_response, patched(sync_resp, 3, 2),
         GossipStatus::bad_entry_count},
        {"sync response, count 0 for 1 entry", RecordType::sync_response, patched(sync_resp, 3, 0),
         GossipStatus::bad_entry_count},
        {"sync response, entry cut", RecordType::sync_response,
         cut(sync_resp, sync_resp.size() - 1), GossipStatus::bad_record_length},
        {"sync response, entry family 0", RecordType::sync_response,
         patched(sync_resp, kSyncResponseFixedLen, 0), GossipStatus::bad_family},
        {"sync response, requester 0", RecordType::sync_response, patched(sync_resp, 1, 0),
         GossipStatus::bad_node},
        {"sync response, short", RecordType::sync_response, cut(sync_resp, 15),
         GossipStatus::bad_record_length},
    };
    for (const Case &c : cases) {
        const std::vector<uint8_t> b = body_of(header_of(kSender, 1), [&](FrameWriter &w) {
            REQUIRE(w.add_raw(static_cast<uint8_t>(c.type), c.value));
        });
        const GossipStatus s = open_status(with_zero_tag(b));
        INFO(c.what << ": got " << gossip_status_name(s));
        CHECK(s == c.expect);
    }
}

TEST_CASE("a TLV length past the payload is record_truncated", "[gossip][codec]")
{
    std::vector<uint8_t> b = body_of(header_of(kSender, 1), [](FrameWriter &w) {
        REQUIRE(w.add_claim({key4(1), kSender, 1}));
    });
    put16(b, kGossipHeaderLen + 2, 21);
    CHECK(open_status(with_zero_tag(b)) == GossipStatus::record_truncated);
    put16(b, kGossipHeaderLen + 2, 0xFFFF);
    CHECK(open_status(with_zero_tag(b)) == GossipStatus::record_truncated);
}

TEST_CASE("the writer fills a frame up to the MTU and refuses the rest", "[gossip][codec]")
{
    const size_t max = gossip_max_frame(1500, false);
    REQUIRE(max == 1472);
    std::vector<uint8_t> buf(4096);
    FrameWriter w(buf, max);
    w.begin(header_of(kSender, 1));
    unsigned added = 0;
    while (w.add_claim({key6(added), kSender, 1}))
        ++added;
    /* (1472 - 32 header - 16 tag) / (4 + 44) per v6 claim */
    CHECK(added == (1472 - 32 - 16) / 48);
    const size_t room = w.room();
    CHECK(room < 48);
    CHECK_FALSE(w.add_claim({key6(999), kSender, 1}));
    CHECK(w.room() == room); /* a refused record leaves the frame unchanged */
    if (room >= 24)
        CHECK(w.add_claim({key4(1), kSender, 1}));
    const std::span<uint8_t> body = w.finish();
    CHECK(body.size() + kGossipTagLen <= max);
    std::vector<uint8_t> frame(body.begin(), body.end());
    frame.resize(frame.size() + kGossipTagLen);
    FrameReader r;
    REQUIRE(r.open(frame) == GossipStatus::ok);
    CHECK(r.header().record_count == w.record_count());
}

TEST_CASE("a sync response takes entries until the frame is full", "[gossip][codec]")
{
    std::vector<uint8_t> buf(2048);
    FrameWriter w(buf, 1000);
    w.begin(header_of(kSender, 1));
    REQUIRE(w.add_digest({kSender, 0, 0}));
    REQUIRE(w.begin_sync_response(9, 1));
    uint16_t n = 0;
    while (w.add_sync_entry({n % 2 ? key6(n) : key4(n), static_cast<NodeId>(1 + n % 7), n}))
        ++n;
    w.end_sync_response(n);
    const std::span<uint8_t> body = w.finish();
    CHECK(body.size() + kGossipTagLen <= 1000);
    CHECK(body.size() + kGossipTagLen > 1000 - 44);
    std::vector<uint8_t> frame(body.begin(), body.end());
    frame.resize(frame.size() + kGossipTagLen);
    FrameReader r;
    REQUIRE(r.open(frame) == GossipStatus::ok);
    const std::vector<GossipRecord> recs = read_all(r);
    REQUIRE(recs.size() == 2);
    REQUIRE(recs[1].sync_response.entry_count == n);
    CHECK(recs[1].sync_response.next_cursor == n);
    FlowEntryCursor c = recs[1].sync_response.entries;
    FlowEntry e;
    for (uint16_t i = 0; i < n; ++i) {
        REQUIRE(c.next(e));
        CHECK(e == FlowEntry{i % 2 ? key6(i) : key4(i), static_cast<NodeId>(1 + i % 7), i});
    }
    CHECK_FALSE(c.next(e));
}

TEST_CASE("a buffer too small for a frame takes nothing", "[gossip][codec]")
{
    std::vector<uint8_t> buf(40);
    FrameWriter w(buf, 1500);
    w.begin(header_of(kSender, 1));
    CHECK_FALSE(w.add_digest({kSender, 0, 0}));
    CHECK(w.finish().empty());

    /* Exactly header + one digest (4 + 16) + tag. */
    std::vector<uint8_t> exact(kGossipHeaderLen + 20 + kGossipTagLen);
    FrameWriter w2(exact, 1500);
    w2.begin(header_of(kSender, 1));
    CHECK(w2.add_digest({kSender, 0, 0}));
    CHECK(w2.room() == 0);
    CHECK_FALSE(w2.add_raw(77, {}));
    CHECK(w2.finish().size() == exact.size() - kGossipTagLen);
}

TEST_CASE("gossip_max_frame subtracts IP and UDP headers", "[gossip][codec]")
{
    CHECK(gossip_max_frame(1500, false) == 1472);
    CHECK(gossip_max_frame(1500, true) == 1452);
    CHECK(gossip_max_frame(9000, false) == 8972);
    CHECK(gossip_max_frame(75, false) == 0);
    CHECK(gossip_max_frame(76, false) == 48);
    CHECK(gossip_max_frame(200000, false) == kGossipMaxFrame);
}

TEST_CASE("every status has a distinct name", "[gossip][codec]")
{
    std::set<std::string_view> names;
    for (size_t i = 0; i < kGossipStatusCount; ++i) {
        const std::string_view n = gossip_status_name(static_cast<GossipStatus>(i));
        CHECK(n != "unknown");
        names.insert(n);
    }
    CHECK(names.size() == kGossipStatusCount);
}
