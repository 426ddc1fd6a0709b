/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the gossip receive path: header decoding, key
 * lookup, HMAC verification, replay window and the record decoder.
 *
 * Built by hand (from the repository root) with:
 *   clang++ -std=c++20 -g -O1 -march=corei7 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=all -Iinclude -isystem /usr/include/dpdk \
 *       -isystem /usr/include/x86_64-linux-gnu/dpdk -include rte_config.h \
 *       fuzz/fuzz_gossip.cpp src/gossip/gossip_*.cpp src/gossip/membership.cpp \
 *       src/packet/datapath/flow_key.cpp src/common/types.cpp \
 *       src/ownership/placement.cpp -lIPSec_MB -lfmt -lrte_eal \
 *       -o /tmp/fuzz_gossip
 *   /tmp/fuzz_gossip -max_total_time=60 fuzz/corpus/gossip
 * The seeds in fuzz/corpus/gossip are written by the unit test tagged
 * [gen-corpus] (./unit_gossip "[gen-corpus]").
 *
 * Input: one control byte, then the bytes.
 *   bit 0 clear: the bytes are a datagram as received. Without the key the
 *                fuzzer rarely forges a tag, so this mode exercises the
 *                checks in front of the HMAC (and the HMAC on any length).
 *   bit 0 set:   the bytes are header + records. The harness appends the
 *                tag under the test key (bit 1 set: after fixing the
 *                header's payload_length to the real length), so the
 *                authenticated record decoder sees arbitrary records.
 *   bit 2 set:   the burst check below takes 13 copies instead of 2.
 * The datagram is copied into an exact-size heap buffer so that
 * AddressSanitizer catches a read past its end. Beyond memory safety the
 * harness checks the decoder's promises and traps when one breaks: every
 * accepted frame, re-encoded by FrameWriter, decodes to the same records;
 * and copies of the datagram screened as one burst each have their
 * one-by-one outcome: the first verify()'s, the others a replay.
 */
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "flowhome/gossip_auth.hpp"
#include "flowhome/gossip_wire.hpp"

using namespace flowhome;

namespace {

constexpr uint32_t kCluster = 0x0F1E2D3C; /* as in tests/support/gossip_test_util.hpp */
constexpr NodeId kSelf = 1;

void require(bool promise)
{
    if (!promise)
        __builtin_trap();
}

Authenticator &authenticator()
{
    static Authenticator *auth = [] {
        KeyRing ring;
        std::vector<uint8_t> key(32);
        for (size_t i = 0; i < key.size(); ++i)
            key[i] = static_cast<uint8_t>(1 * 31 + i * 7 + 1); /* test_key(1) */
        ring.add(1, key);
        auto *a = new Authenticator();
        a->set_keys(ring);
        return a;
    }();
    return *auth;
}

bool same_views(MemberViewCursor a, MemberViewCursor b)
{
    MemberView x;
    MemberView y;
    for (;;) {
        const bool ha = a.next(x);
        const bool hb = b.next(y);
        if (ha != hb)
            return false;
        if (!ha)
            return true;
        if (!(x == y))
            return false;
    }
}

bool same_entries(FlowEntryCursor a, FlowEntryCursor b)
{
    FlowEntry x;
    FlowEntry y;
    for (;;) {
        const bool ha = a.next(x);
        const bool hb = b.next(y);
        if (ha != hb)
            return false;
        if (!ha)
            return true;
        if (!(x == y))
            return false;
    }
}

bool same_record(const GossipRecord &a, const GossipRecord &b)
{
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case RecordType::claim:
    case RecordType::release:
        return a.flow == b.flow;
    case RecordType::digest:
        return a.digest == b.digest;
    case RecordType::resend_request:
    case RecordType::resent:
        return a.resend == b.resend;
    case RecordType::heartbeat:
        return a.heartbeat.node == b.heartbeat.node && a.heartbeat.state == b.heartbeat.state &&
               a.heartbeat.draining == b.heartbeat.draining &&
               a.heartbeat.incarnation == b.heartbeat.incarnation &&
               a.heartbeat.counter == b.heartbeat.counter &&
               a.heartbeat.view_count == b.heartbeat.view_count &&
               same_views(a.heartbeat.views, b.heartbeat.views);
    case RecordType::sync_request:
        return a.sync_request == b.sync_request;
    case RecordType::sync_response:
        return a.sync_response.requester == b.sync_response.requester &&
               a.sync_response.entry_count == b.sync_response.entry_count &&
               a.sync_response.request_id == b.sync_response.request_id &&
               a.sync_response.next_cursor == b.sync_response.next_cursor &&
               same_entries(a.sync_response.entries, b.sync_response.entries);
    }
    return false;
}

/* Promises about an accepted frame. */
void check_accepted(FrameReader &reader, size_t frame_size)
{
    const FrameHeader hdr = reader.header();
    require(reader.signed_bytes().size() + kGossipTagLen == frame_size);
    std::vector<GossipRecord> records;
    GossipRecord rec;
    while (reader.next(rec))
        records.push_back(rec);
    require(records.size() + reader.unknown_records() == hdr.record_count);

    /* Differential: encode what was decoded, decode again, compare. */
    std::vector<uint8_t> buf(kGossipMaxFrame);
    FrameWriter w(buf, buf.size());
    w.begin(hdr);
    for (const GossipRecord &r : records)
        require(w.add(r));
    const std::span<uint8_t> body = w.finish();
    std::vector<uint8_t> again(body.begin(), body.end());
    again.resize(again.size() + kGossipTagLen);
    FrameReader second;
    require(second.open(again) == GossipStatus::ok);
    require(second.unknown_records() == 0);
    size_t i = 0;
    while (second.next(rec)) {
        require(i < records.size());
        require(same_record(rec, records[i]));
        ++i;
    }
    require(i == records.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > kGossipMaxFrame)
        return 0;
    const uint8_t control = data[0];
    ++data;
    --size;
    Authenticator &auth = authenticator();

    size_t frame_size = size;
    std::unique_ptr<uint8_t[]> frame;
    if ((control & 1) == 0) {
        frame = std::make_unique<uint8_t[]>(size);
        std::memcpy(frame.get(), data, size);
    } else {
        if (size < kGossipHeaderLen)
            return 0;
        frame_size = size + kGossipTagLen;
        frame = std::make_unique<uint8_t[]>(frame_size);
        std::memcpy(frame.get(), data, size);
        if ((control & 2) != 0 && size - kGossipHeaderLen <= 0xFFFF) {
            /* Make the lengths consistent (for a 32-byte header). */
            const size_t payload = size - kGossipHeaderLen;
            frame[gossip_hdr::payload_length] = static_cast<uint8_t>(payload >> 8);
            frame[gossip_hdr::payload_length + 1] = static_cast<uint8_t>(payload);
        }
        if (auth.seal({frame.get(), frame_size}, size) != frame_size)
            return 0; /* unknown key id: the raw mode covers that path */
    }

    FrameVerifier verifier(FrameVerifier::Params{kCluster, kSelf}, auth);
    FrameReader reader;
    const std::span<const uint8_t> bytes(frame.get(), frame_size);
    const VerifyResult v = verifier.verify(bytes, reader);
    require(verifier.stats().count(v.status) == 1);
    if (v.status == GossipStatus::ok) {
        require(v.first_contact);
        check_accepted(reader, frame_size);
        /* The same datagram again is a replay. */
        FrameReader again;
        require(verifier.verify(bytes, again).status == GossipStatus::replayed);
        GossipRecord rec;
        require(!again.next(rec));
    } else {
        GossipRecord rec;
        require(!reader.next(rec));
    }

    /* The same datagram several times in one burst (control bit 2: 13
     * times, enough for the AVX-512 lanes where the CPU has them; else
     * twice): the tags checked together, each copy has the outcome it has
     * one by one, the first that of verify() above, the others a replay. */
    const size_t copies = (control & 4) != 0 ? 13 : 2;
    FrameVerifier burst(FrameVerifier::Params{kCluster, kSelf}, auth);
    std::vector<std::span<const uint8_t>> frames(copies, bytes);
    std::vector<FrameCheck> checks(copies);
    burst.screen(frames, checks);
    for (size_t i = 0; i < copies; ++i) {
        FrameReader r;
        const VerifyResult b = burst.accept(bytes, checks[i], r);
        require(b.status ==
                (i == 0 || v.status != GossipStatus::ok ? v.status : GossipStatus::replayed));
    }
    return 0;
}
