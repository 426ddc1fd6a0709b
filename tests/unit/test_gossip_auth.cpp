/* SPDX-License-Identifier: BSD-3-Clause */
/* Gossip authentication: HMAC vectors, tampering, keys, rotation, replay. */
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <cpuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "gossip_test_util.hpp"

using namespace flowhome;
using namespace flowhome::test;

namespace {

constexpr NodeId kSelf = 1;
constexpr NodeId kPeer = 2;

/* What IPsec-MB asks of a CPU for the SHA extensions' manager and for its
 * AVX-512 manager (IMB_CPUFLAGS_SSE_T2 and IMB_CPUFLAGS_AVX512), read from
 * CPUID here rather than from the library under test; like the library,
 * from CPUID alone. (GCC's __builtin_cpu_supports knows "sha"; clang 14's
 * does not.) */
bool cpu_has_sha_and_avx512()
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0)
        return false;
    constexpr unsigned kLeaf1Ecx = bit_SSE4_2 | bit_AES | bit_PCLMUL | bit_AVX;
    if ((c & kLeaf1Ecx) != kLeaf1Ecx || (d & bit_CMOV) == 0)
        return false;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0)
        return false;
    constexpr unsigned kLeaf7Ebx = bit_SHA | bit_AVX2 | bit_BMI2 | bit_AVX512F | bit_AVX512CD |
                                   bit_AVX512BW | bit_AVX512DQ | bit_AVX512VL;
    return (b & kLeaf7Ebx) == kLeaf7Ebx;
}

std::vector<uint8_t> from_hex(std::string_view hex)
{
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

std::vector<uint8_t> claim_frame(Authenticator &auth, uint64_t seq, uint32_t incarnation = 7,
                                 uint16_t key_id = kTestKeyId, NodeId sender = kPeer)
{
    return sealed(auth, body_of(header_of(sender, seq, incarnation, key_id), [&](FrameWriter &w) {
                      REQUIRE(w.add_claim({key4(static_cast<uint32_t>(seq)), sender, 1}));
                      REQUIRE(w.add_digest({sender, 1, 99}));
                  }));
}

struct Node {
    Authenticator auth;
    FrameVerifier verifier;

    explicit Node(const KeyRing &ring, NodeId self = kSelf)
        : verifier(FrameVerifier::Params{kTestCluster, self}, auth)
    {
        auth.set_keys(ring);
    }

    GossipStatus receive(const std::vector<uint8_t> &frame)
    {
        FrameReader r;
        return verifier.verify(frame, r).status;
    }
};

} // namespace

TEST_CASE("HMAC-SHA-256-128 matches RFC 4231 and a 64-byte-key reference", "[gossip][auth]")
{
    struct Vector {
        std::vector<uint8_t> key;
        std::vector<uint8_t> data;
        const char *tag;
    };
    std::vector<uint8_t> long_data(1000);
    for (size_t i = 0; i < long_data.size(); ++i)
        long_data[i] = static_cast<uint8_t>(i * 7 + 3);
    std::vector<uint8_t> key64(64);
    for (size_t i = 0; i < 64; ++i)
        key64[i] = static_cast<uint8_t>(i + 1);
    std::vector<uint8_t> key25(25);
    for (size_t i = 0; i < 25; ++i)
        key25[i] = static_cast<uint8_t>(i + 1);
    const Vector vectors[] = {
        /* RFC 4231 test case 1 (first 128 bits, as RFC 4868 truncates). */
        {std::vector<uint8_t>(20, 0x0b),
         {'H', 'i', ' ', 'T', 'h', 'e', 'r', 'e'},
         "b0344c61d8db38535ca8afceaf0bf12b"},
        /* RFC 4231 test case 4. */
        {key25, std::vector<uint8_t>(50, 0xcd), "82558a389a443c0ea4cc819899f2083a"},
        /* Python hmac.new(bytes(range(1, 65)), data, sha256): a full-block key, many blocks. */
        {key64, long_data, "5678a72ce0a9715d7dcb90943a383394"},
    };
    /* Both code paths: the one this CPU takes, and the one of CPUs without
     * the SHA extensions (the multi-buffer lanes). */
    const auto sha = GENERATE(ShaExtensions::when_present, ShaExtensions::off);
    CAPTURE(sha == ShaExtensions::off ? "SHA extensions off" : "SHA extensions when present");
    for (const Vector &v : vectors) {
        KeyRing ring;
        REQUIRE(ring.add(9, v.key));
        Authenticator auth(sha);
        auth.set_keys(ring);
        std::array<uint8_t, kGossipTagLen> tag{};
        REQUIRE(auth.compute_tag(9, v.data, tag));
        CHECK(std::vector<uint8_t>(tag.begin(), tag.end()) == from_hex(v.tag));
        CHECK_FALSE(auth.compute_tag(10, v.data, tag));
    }
}

TEST_CASE("nodes with and without the SHA extensions compute the same tags", "[gossip][auth]")
{
    Authenticator here;
    Authenticator without(ShaExtensions::off);
    CHECK_FALSE(without.uses_sha_extensions());
    KeyRing ring;
    std::vector<uint8_t> key(32);
    for (size_t i = 0; i < key.size(); ++i)
        key[i] = static_cast<uint8_t>(0xa0 + i);
    REQUIRE(ring.add(3, key));
    here.set_keys(ring);
    without.set_keys(ring);

    /* Every frame length from a bare header up to an Ethernet MTU's frame,
     * so every position of the end against a SHA-256 block (the padding
     * takes one or two blocks), and the longest frame a UDP datagram carries. */
    std::vector<uint8_t> data(kGossipMaxFrame - kGossipTagLen);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 131 + 17);
    std::vector<size_t> lengths(1501 - kGossipHeaderLen);
    std::iota(lengths.begin(), lengths.end(), kGossipHeaderLen);
    lengths.push_back(data.size());
    for (const size_t len : lengths) {
        CAPTURE(len);
        std::array<uint8_t, kGossipTagLen> a{};
        std::array<uint8_t, kGossipTagLen> b{};
        REQUIRE(here.compute_tag(3, std::span(data).first(len), a));
        REQUIRE(without.compute_tag(3, std::span(data).first(len), b));
        CHECK(a == b);
    }
}

TEST_CASE("a batch of tags says of each what verify() says, on every code path", "[gossip][auth]")
{
    const auto sha = GENERATE(ShaExtensions::when_present, ShaExtensions::off);
    CAPTURE(sha == ShaExtensions::off ? "SHA extensions off" : "SHA extensions when present");
    Authenticator auth(sha);
    /* Where the CPU has both, bursts of 12 and more go to the AVX-512 lanes. */
    const bool wide = sha == ShaExtensions::when_present && cpu_has_sha_and_avx512();
    CHECK(auth.wide_batch_min() == (wide ? 12u : 0u));
    std::vector<uint8_t> key_a(32, 0x5a);
    std::vector<uint8_t> key_b(48, 0xa5);
    KeyRing ring;
    REQUIRE(ring.add(4, key_a));
    REQUIRE(ring.add(5, key_b));
    auth.set_keys(ring);

    std::vector<uint8_t> data(1500);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 29 + 11);
    /* Sizes around the lanes' passes (16) and the batch's most (32). */
    for (const size_t n : {0, 1, 2, 11, 12, 15, 16, 17, 27, 28, 31, 32, 33, 48, 70}) {
        CAPTURE(n);
        std::vector<std::array<uint8_t, kGossipTagLen>> tags(n);
        std::vector<TagCheck> checks(n);
        std::vector<GossipStatus> expected(n);
        for (size_t i = 0; i < n; ++i) {
            /* Every length modulo a SHA-256 block, up to a full frame. */
            const auto bytes = std::span(data).subspan(i % 7, 32 + (i * 97) % 1408);
            const uint16_t key = i % 2 == 0 ? 4 : 5;
            REQUIRE(auth.compute_tag(key, bytes, tags[i]));
            expected[i] = GossipStatus::ok;
            checks[i] = {key, bytes, tags[i]};
            if (i % 5 == 1) {
                tags[i][i % kGossipTagLen] ^= 0x10;
                expected[i] = GossipStatus::bad_tag;
            } else if (i % 7 == 3) {
                checks[i].key_id = 6;
                expected[i] = GossipStatus::unknown_key;
            }
        }
        std::vector<GossipStatus> out(n, GossipStatus::truncated);
        auth.verify_batch(checks, out);
        CHECK(out == expected);
        for (size_t i = 0; i < n; ++i)
            CHECK(auth.verify(checks[i].key_id, checks[i].signed_bytes, checks[i].tag) ==
                  expected[i]);
    }
}

TEST_CASE("frames screened as a burst are accepted as verify() takes them one by one",
          "[gossip][auth]")
{
    Node sender(ring_of({{kTestKeyId, 1}}), kPeer);
    Node forger(ring_of({{kTestKeyId, 2}}), kPeer);
    std::vector<std::vector<uint8_t>> frames;
    for (uint64_t seq = 1; seq <= 40; ++seq)
        frames.push_back(claim_frame(seq % 9 == 4 ? forger.auth : sender.auth, seq));
    frames.push_back(frames[2]);                       /* a replay, after the first chunk of 32 */
    frames.push_back(frames[35]);                      /* a replay within the second */
    frames[20].resize(10);                             /* truncated */
    frames.push_back(claim_frame(sender.auth, 1, 8));  /* the sender restarted */
    frames.push_back(claim_frame(sender.auth, 41, 7)); /* its earlier life */

    Node alone(ring_of({{kTestKeyId, 1}}));
    Node burst(ring_of({{kTestKeyId, 1}}));
    const std::vector<std::span<const uint8_t>> spans(frames.begin(), frames.end());
    std::vector<FrameCheck> checks(spans.size());
    burst.verifier.screen(spans, checks);
    for (size_t i = 0; i < frames.size(); ++i) {
        CAPTURE(i);
        FrameReader ra;
        FrameReader rb;
        const VerifyResult a = alone.verifier.verify(frames[i], ra);
        const VerifyResult b = burst.verifier.accept(frames[i], checks[i], rb);
        CHECK(a.status == b.status);
        CHECK(a.sender == b.sender);
        CHECK(a.first_contact == b.first_contact);
        CHECK(a.new_incarnation == b.new_incarnation);
    }
    for (size_t s = 0; s < kGossipStatusCount; ++s)
        CHECK(alone.verifier.stats().by_status[s].get() ==
              burst.verifier.stats().by_status[s].get());
    CHECK(burst.verifier.stats().count(GossipStatus::ok) == 35);
    CHECK(burst.verifier.stats().count(GossipStatus::bad_tag) == 5);
    CHECK(burst.verifier.stats().count(GossipStatus::replayed) == 2);
    CHECK(burst.verifier.stats().count(GossipStatus::stale_incarnation) == 1);
    CHECK(burst.verifier.stats().new_incarnations.get() == 1);
}

TEST_CASE("a sealed frame verifies and yields its records", "[gossip][auth]")
{
    Node sender(ring_of({{kTestKeyId, 1}}), kPeer);
    Node receiver(ring_of({{kTestKeyId, 1}}));
    const std::vector<uint8_t> frame = claim_frame(sender.auth, 1);
    REQUIRE(!frame.empty());
    FrameReader r;
    const VerifyResult v = receiver.verifier.verify(frame, r);
    REQUIRE(v.status == GossipStatus::ok);
    CHECK(v.first_contact);
    CHECK_FALSE(v.new_incarnation);
    GossipRecord rec;
    REQUIRE(r.next(rec));
    CHECK(rec.flow == FlowEntry{key4(1), kPeer, 1});
    CHECK(receiver.verifier.stats().count(GossipStatus::ok) == 1);
}

TEST_CASE("a wrong key, an unknown key id, another cluster and our own frames are refused",
          "[gossip][auth]")
{
    Node sender(ring_of({{kTestKeyId, 1}, {5, 3}}), kPeer);
    Node receiver(ring_of({{kTestKeyId, 2}}));
    CHECK(receiver.receive(claim_frame(sender.auth, 1)) == GossipStatus::bad_tag);
    CHECK(receiver.receive(claim_frame(sender.auth, 2, 7, 5)) == GossipStatus::unknown_key);

    Node good(ring_of({{kTestKeyId, 1}}));
    std::vector<uint8_t> other = body_of(header_of(kPeer, 3), [](FrameWriter &w) {
        REQUIRE(w.add_digest({kPeer, 0, 0}));
    });
    put32(other, gossip_hdr::cluster_id, kTestCluster + 1);
    CHECK(good.receive(sealed(sender.auth, other)) == GossipStatus::wrong_cluster);
    CHECK(good.receive(claim_frame(sender.auth, 4, 7, kTestKeyId, kSelf)) ==
          GossipStatus::own_frame);
    CHECK(good.verifier.stats().count(GossipStatus::wrong_cluster) == 1);
    CHECK(good.verifier.stats().count(GossipStatus::own_frame) == 1);
    CHECK(receiver.verifier.stats().count(GossipStatus::bad_tag) == 1);
    CHECK(receiver.verifier.stats().count(GossipStatus::unknown_key) == 1);
}

TEST_CASE("one flipped bit anywhere in a frame is rejected", "[gossip][auth]")
{
    Node sender(ring_of({{kTestKeyId, 1}}), kPeer);
    Node receiver(ring_of({{kTestKeyId, 1}}));
    const std::vector<uint8_t> frame = claim_frame(sender.auth, 1);
    for (size_t i = 0; i < frame.size(); ++i) {
        for (const uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
            std::vector<uint8_t> t = frame;
            t[i] ^= bit;
            const GossipStatus s = receiver.receive(t);
            INFO("byte " << i << " bit " << int{bit} << ": " << gossip_status_name(s));
            REQUIRE(s != GossipStatus::ok);
            /* Beyond the fields checked before the tag (magic .. key id,
             * payload length), the tag must catch it. */
            const bool checked_before_tag = i < gossip_hdr::incarnation ||
                                            i == gossip_hdr::payload_length ||
                                            i == gossip_hdr::payload_length + 1;
            if (!checked_before_tag)
                REQUIRE(s == GossipStatus::bad_tag);
        }
    }
    /* None of that moved the replay window: the original is still fresh. */
    CHECK(receiver.receive(frame) == GossipStatus::ok);
}

TEST_CASE("the replay window accepts each sequence number once", "[gossip][auth]")
{
    Node sender(ring_of({{kTestKeyId, 1}}), kPeer);
    Node receiver(ring_of({{kTestKeyId, 1}}));
    auto rx = [&](uint64_t seq) { return receiver.receive(claim_frame(sender.auth, seq)); };
    CHECK(rx(10) == GossipStatus::ok);
    CHECK(rx(10) == GossipStatus::replayed);
    CHECK(rx(9) == GossipStatus::ok); /* reordered, inside the window */
    CHECK(rx(9) == GossipStatus::replayed);
    CHECK(rx(74) == GossipStatus::ok); /* window now 11..74 */
    CHECK(rx(11) == GossipStatus::ok);
    CHECK(rx(10) == GossipStatus::replayed); /* left of the window: too old to tell */
    CHECK(rx(1000) == GossipStatus::ok);     /* a jump clears the window */
    CHECK(rx(999) == GossipStatus::ok);
    CHECK(rx(74) == GossipStatus::replayed);
    CHECK(receiver.verifier.stats().count(GossipStatus::replayed) == 4);
}

TEST_CASE("a forged or malformed frame does not advance the window", "[gossip][auth]")
{
    Node sender(ring_of({{kTestKeyId, 1}}), kPeer);
    Node forger(ring_of({{kTestKeyId, 2}}), kPeer);
    Node receiver(ring_of({{kTestKeyId, 1}}));
    CHECK(receiver.receive(claim_frame(sender.auth, 5)) == GossipStatus::ok);
    CHECK(receiver.receive(claim_frame(forger.auth, 5000)) == GossipStatus::bad_tag);
    /* Signed but with a bad record: rejected after the tag, window untouched. */
    const std::vector<uint8_t> bad =
        sealed(sender.auth, body_of(header_of(kPeer, 6), [](FrameWriter &w) {
                   std::vector<uint8_t> v(20, 0);
                   v[0] = 5;
                   REQUIRE(w.add_raw(static_cast<uint8_t>(RecordType::claim), v));
               }));
    CHECK(receiver.receive(bad) == GossipStatus::bad_family);
    CHECK(receiver.receive(claim_frame(sender.auth, 6)) == GossipStatus::ok);
    CHECK(receiver.receive(claim_frame(sender.auth, 4)) == GossipStatus::ok);
}

TEST_CASE("a new incarnation resets the window; an old one is stale", "[gossip][auth]")
{
    Node sender(ring_of({{kTestKeyId, 1}}), kPeer);
    Node receiver(ring_of({{kTestKeyId, 1}}));
    FrameReader r;
    REQUIRE(receiver.verifier.verify(claim_frame(sender.auth, 100, 5), r).status ==
            GossipStatus::ok);
    const VerifyResult restart = receiver.verifier.verify(claim_frame(sender.auth, 1, 6), r);
    CHECK(restart.status == GossipStatus::ok);
    CHECK(restart.new_incarnation);
    CHECK_FALSE(restart.first_contact);
    CHECK(receiver.receive(claim_frame(sender.auth, 2, 6)) == GossipStatus::ok);
    CHECK(receiver.receive(claim_frame(sender.auth, 101, 5)) == GossipStatus::stale_incarnation);
    CHECK(receiver.receive(claim_frame(sender.auth, 1, 6)) == GossipStatus::replayed);
    CHECK(receiver.verifier.stats().new_incarnations.get() == 1);
}

TEST_CASE("key rotation: the previous key is accepted while the new one is sent", "[gossip][auth]")
{
    /* Step 1: everyone knows keys 1 and 2 and still sends with 1. */
    KeyRing step1 = ring_of({{1, 1}, {2, 2}});
    CHECK(step1.send_key_id() == 2); /* default: the highest id */
    REQUIRE(step1.set_send_key(1));
    CHECK(step1.send_key_id() == 1);
    CHECK_FALSE(step1.set_send_key(3));

    Node old_node(ring_of({{1, 1}}), kPeer);
    Node rotating(step1, 3);
    Node receiver(ring_of({{1, 1}, {2, 2}}));
    Node not_updated(ring_of({{1, 1}}));

    /* Step 2: sending with key 2; nodes that have key 2 accept both. */
    CHECK(receiver.receive(claim_frame(old_node.auth, 1, 7, 1)) == GossipStatus::ok);
    CHECK(receiver.receive(claim_frame(rotating.auth, 1, 7, 2, 3)) == GossipStatus::ok);
    CHECK(receiver.receive(claim_frame(rotating.auth, 2, 7, 1, 3)) == GossipStatus::ok);
    /* A node still without key 2 rejects frames under it, by name. */
    CHECK(not_updated.receive(claim_frame(rotating.auth, 3, 7, 2, 3)) == GossipStatus::unknown_key);
}

TEST_CASE("KeyRing refuses bad keys and a third key", "[gossip][auth]")
{
    KeyRing ring;
    CHECK_FALSE(ring.add(0, test_key(1)));
    CHECK_FALSE(ring.add(1, std::vector<uint8_t>(15, 1)));
    CHECK_FALSE(ring.add(1, std::vector<uint8_t>(65, 1)));
    CHECK(ring.send_key_id() == 0);
    CHECK(ring.add(1, std::vector<uint8_t>(16, 1)));
    CHECK_FALSE(ring.add(1, std::vector<uint8_t>(16, 2)));
    CHECK(ring.add(7, std::vector<uint8_t>(64, 2)));
    CHECK_FALSE(ring.add(8, std::vector<uint8_t>(32, 3)));
    CHECK(ring.keys().size() == 2);
    CHECK(ring.send_key_id() == 7);
    REQUIRE(ring.find(7) != nullptr);
    CHECK(ring.find(7)->len == 64);
}

TEST_CASE("constant_time_equal compares contents and lengths", "[gossip][auth]")
{
    const std::vector<uint8_t> a{1, 2, 3, 4};
    CHECK(constant_time_equal(a, std::vector<uint8_t>{1, 2, 3, 4}));
    CHECK_FALSE(constant_time_equal(a, std::vector<uint8_t>{1, 2, 3, 5}));
    CHECK_FALSE(constant_time_equal(a, std::vector<uint8_t>{0, 2, 3, 4}));
    CHECK_FALSE(constant_time_equal(a, std::vector<uint8_t>{1, 2, 3}));
}

TEST_CASE("the key file parser takes keys, comments and a send line", "[gossip][auth][keys]")
{
    const std::string hex1(64, 'a');
    const std::string hex2 = "00112233445566778899AABBCCDDEEFF";
    const KeyRing ring = parse_key_file("# gossip keys\n\n  key 3 " + hex1 +
                                            "   # current\r\n\tkey 4 " + hex2 + "\nsend 3\n",
                                        "keys.txt");
    REQUIRE(ring.keys().size() == 2);
    CHECK(ring.send_key_id() == 3);
    REQUIRE(ring.find(4) != nullptr);
    CHECK(ring.find(4)->len == 16);
    CHECK(ring.find(4)->bytes[15] == 0xFF);
    CHECK(ring.find(3)->bytes[0] == 0xAA);
    CHECK(parse_key_file("key 9 " + hex2 + "\nkey 2 " + hex1, "k").send_key_id() == 9);
}

TEST_CASE("key file errors name file, line and what was expected", "[gossip][auth][keys]")
{
    const std::string good = "key 1 " + std::string(32, '0') + "\n";
    struct Case {
        std::string text;
        const char *message;
    };
    const Case cases[] = {
        {"", "k.txt: no key defined; expected at least one 'key <id> <hex>' line"},
        {"# only a comment\n", "k.txt: no key defined"},
        {"secret 1 00\n", "k.txt:1: expected 'key <id> <hex>' or 'send <id>', got 'secret'"},
        {"\nkey 1\n", "k.txt:2: expected 'key <id> <hex key material>'"},
        {"key one " + std::string(32, '0'),
         "k.txt:1: expected a key id (decimal 1..65535), got 'one'"},
        {"key 0 " + std::string(32, '0'), "got '0'"},
        {"key 65536 " + std::string(32, '0'), "got '65536'"},
        {"key 1 " + std::string(30, '0'),
         "k.txt:1: key 1 is 15 bytes; at least 16 bytes (32 hex digits) are required"},
        {"key 1 " + std::string(130, '0'), "key 1 is 65 bytes; at most 64 bytes"},
        {"key 1 " + std::string(33, '0'),
         "k.txt:1: key 1: expected an even number of hex digits, got 33"},
        {"key 1 " + std::string(31, '0') + "g",
         "key 1: expected hex digits, got 'g' at position 32"},
        {good + "key 1 " + std::string(32, '1'),
         "k.txt:2: key id 1 is defined twice (first on line 1)"},
        {good + "key 2 " + std::string(32, '1') + "\nkey 3 " + std::string(32, '2'),
         "k.txt:3: expected at most 2 keys"},
        {good + "send 2\n", "k.txt:2: 'send 2' names no key defined in this file"},
        {good + "send 1\nsend 1\n", "k.txt:3: 'send' is given twice (first on line 2)"},
        {good + "send\n", "k.txt:2: expected 'send <id>'"},
        {"key 1 " + std::string(32, '0') + " extra",
         "k.txt:1: unexpected 'extra' after the key material"},
    };
    for (const Case &c : cases) {
        INFO(c.text);
        CHECK_THROWS_WITH(parse_key_file(c.text, "k.txt"), Catch::Contains(c.message));
    }
}

TEST_CASE("load_key_file reads a file and flags permissive modes", "[gossip][auth][keys]")
{
    char path[] = "/tmp/flowhome-gossip-keys-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    /* Whatever is at the path at the end, also when a check stops the test. */
    struct RemovedAtEnd {
        const char *path;
        ~RemovedAtEnd() { std::remove(path); }
    } const removed_at_end{path};
    {
        std::ofstream out(path);
        out << "key 1 " << std::string(64, 'c') << "\n";
    }
    REQUIRE(chmod(path, 0600) == 0);
    KeyFile f = load_key_file(path);
    CHECK(f.mode == 0600);
    CHECK(key_file_warning(f, path).empty());
    CHECK(f.ring.send_key_id() == 1);
    REQUIRE(chmod(path, 0644) == 0);
    f = load_key_file(path);
    CHECK(f.mode == 0644);
    CHECK(key_file_warning(f, path) ==
          std::string(path) +
              " is open to its group or others (mode 644); it holds the cluster's gossip keys");
    /* Larger than any key file: refused, not read on without end. */
    {
        std::ofstream out(path, std::ios::trunc);
        for (int i = 0; i < 2000; ++i)
            out << "key 1 " << std::string(64, 'c') << "\n";
    }
    CHECK_THROWS_WITH(load_key_file(path),
                      std::string(path) + ": larger than 64 KiB; a gossip key file is a few lines");
    std::remove(path);
    CHECK_THROWS_WITH(load_key_file(path), Catch::Contains(std::string(path) + ": cannot open"));
    /* A FIFO nobody writes to, a directory: refused at once (a reload runs
     * on the console's thread, which must not wait for a writer). */
    REQUIRE(mkfifo(path, 0600) == 0);
    CHECK_THROWS_WITH(load_key_file(path),
                      std::string(path) + ": the gossip key file is not a regular file");
    std::remove(path);
    CHECK_THROWS_WITH(load_key_file("/tmp"), "/tmp: the gossip key file is not a regular file");
}

/*
 * Writes the fuzzer's seed corpus (fuzz/corpus/gossip). Hidden: run with
 *   ./unit_gossip "[gen-corpus]"
 * Each seed is the harness's control byte followed by a frame (mode 0) or
 * an unsigned body (modes 1 and 3); see fuzz/fuzz_gossip.cpp.
 */
TEST_CASE("write the gossip fuzz corpus", "[.][gen-corpus]")
{
    Authenticator auth;
    auth.set_keys(ring_of({{kTestKeyId, 1}}));
    FrameHeader mixed_header = header_of(kPeer, 9);
    mixed_header.bare_below = 0x0B; /* frames 8, 7 and 5 were bare */
    const std::vector<uint8_t> mixed = body_of(mixed_header, [](FrameWriter &w) {
        REQUIRE(w.add_claim({key4(1), kPeer, 1}));
        REQUIRE(w.add_claim({key6(2), kPeer, 2}));
        REQUIRE(w.add_release({key4(3), kPeer, 3}));
        REQUIRE(w.add_digest({kPeer, 2, 0x1234}));
        const MemberView views[] = {{1, NodeState::alive, false, 3}, {4, NodeState::dead, true, 9}};
        REQUIRE(w.add_heartbeat({kPeer, NodeState::alive, false, 7, 12, 0, {}}, views));
        REQUIRE(w.add_sync_request({1, 0, 5, 0}));
    });
    const std::vector<uint8_t> sync = body_of(header_of(kPeer, 2), [](FrameWriter &w) {
        REQUIRE(w.begin_sync_response(1, 5));
        for (uint32_t i = 0; i < 12; ++i)
            REQUIRE(w.add_sync_entry({i % 2 ? key4(i) : key6(i), static_cast<NodeId>(2 + i % 3),
                                      static_cast<uint16_t>(i), i % 3 == 0}));
        w.end_sync_response(77);
    });
    const std::vector<uint8_t> unknown = body_of(header_of(kPeer, 3), [](FrameWriter &w) {
        const std::vector<uint8_t> blob{9, 9, 9};
        REQUIRE(w.add_raw(42, blob));
        REQUIRE(w.add_release({key6(7), kPeer, 0xFFFF}));
    });
    struct Seed {
        const char *name;
        uint8_t control;
        std::vector<uint8_t> bytes;
    };
    const Seed seeds[] = {
        {"signed-mixed", 0, sealed(auth, mixed)},
        {"signed-sync", 0, sealed(auth, sync)},
        {"body-mixed", 3, mixed},
        {"body-sync", 3, sync},
        {"body-unknown", 1, unknown},
    };
    const std::string dir = std::string(FLOWHOME_SOURCE_DIR) + "/fuzz/corpus/gossip/";
    for (const Seed &s : seeds) {
        REQUIRE(!s.bytes.empty());
        std::ofstream out(dir + s.name, std::ios::binary);
        REQUIRE(out);
        out.put(static_cast<char>(s.control));
        out.write(reinterpret_cast<const char *>(s.bytes.data()),
                  static_cast<std::streamsize>(s.bytes.size()));
    }
}
