/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared fixtures of the gossip unit tests: keys, flow keys and a builder
 * that writes and seals frames with the production FrameWriter and
 * Authenticator.
 */
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include <arpa/inet.h>

#include "flowhome/gossip_auth.hpp"
#include "flowhome/gossip_wire.hpp"

namespace flowhome::test {

inline constexpr uint32_t kTestCluster = 0x0F1E2D3C;
inline constexpr uint16_t kTestKeyId = 1;

inline std::vector<uint8_t> test_key(uint8_t seed)
{
    std::vector<uint8_t> k(32);
    for (size_t i = 0; i < k.size(); ++i)
        k[i] = static_cast<uint8_t>(seed * 31 + i * 7 + 1);
    return k;
}

inline KeyRing ring_of(std::initializer_list<std::pair<uint16_t, uint8_t>> keys)
{
    KeyRing ring;
    for (const auto &[id, seed] : keys)
        ring.add(id, test_key(seed));
    return ring;
}

inline FlowKey key4(uint32_t i, uint8_t proto = kProtoTcp)
{
    return FlowKey::make4(htonl(0xC0000200u + (i & 0xFF)), htons(static_cast<uint16_t>(1024 + i)),
                          htonl(0xC6336401u), htons(443), proto);
}

inline FlowKey key6(uint32_t i, uint8_t proto = kProtoUdp)
{
    std::array<uint8_t, 16> client{0x20, 0x01, 0x0d, 0xb8};
    std::array<uint8_t, 16> vip{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80};
    client[12] = static_cast<uint8_t>(i >> 24);
    client[13] = static_cast<uint8_t>(i >> 16);
    client[14] = static_cast<uint8_t>(i >> 8);
    client[15] = static_cast<uint8_t>(i);
    return FlowKey::make6(client.data(), htons(static_cast<uint16_t>(40000 + i)), vip.data(),
                          htons(53), proto);
}

inline FrameHeader header_of(NodeId sender, uint64_t seq, uint32_t incarnation = 7,
                             uint16_t key_id = kTestKeyId)
{
    FrameHeader h;
    h.cluster_id = kTestCluster;
    h.sender = sender;
    h.key_id = key_id;
    h.incarnation = incarnation;
    h.sequence = seq;
    return h;
}

/** Writes a frame with @p fill, returns header + records (unsigned, no tag). */
inline std::vector<uint8_t> body_of(const FrameHeader &h,
                                    const std::function<void(FrameWriter &)> &fill,
                                    size_t max_frame = 1472)
{
    std::vector<uint8_t> buf(kGossipMaxFrame);
    FrameWriter w(buf, max_frame);
    w.begin(h);
    fill(w);
    const std::span<uint8_t> body = w.finish();
    return {body.begin(), body.end()};
}

/** Appends the tag computed by @p auth (the key the header names). */
inline std::vector<uint8_t> sealed(Authenticator &auth, std::vector<uint8_t> body)
{
    const size_t len = body.size();
    body.resize(len + kGossipTagLen);
    if (auth.seal(body, len) != body.size())
        body.clear(); /* makes the caller's REQUIREs fail loudly */
    return body;
}

/** Appends a zero tag: for decoder tests that do not authenticate. */
inline std::vector<uint8_t> with_zero_tag(std::vector<uint8_t> body)
{
    body.resize(body.size() + kGossipTagLen, 0);
    return body;
}

inline void put16(std::vector<uint8_t> &b, size_t off, uint16_t v)
{
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}

inline void put32(std::vector<uint8_t> &b, size_t off, uint32_t v)
{
    put16(b, off, static_cast<uint16_t>(v >> 16));
    put16(b, off + 2, static_cast<uint16_t>(v));
}

} // namespace flowhome::test
