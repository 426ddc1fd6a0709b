/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The conflict rule and digests (docs/gossip-protocol.md, "Conflict rule"
 * and "Healing"). Pure functions: the same inputs give the same answer on
 * every node, which is what makes the tables converge.
 */
#include "flowhome/gossip_state.hpp"
#include "flowhome/placement.hpp"

namespace flowhome {

bool claim_wins(const Claim &a, const Claim &b, uint32_t hash) noexcept
{
    const int by_version = serial_compare(a.version, b.version);
    if (by_version != 0)
        return by_version > 0;
    if (a.owner != b.owner) {
        const uint64_t sa = rendezvous_score(hash, a.owner);
        const uint64_t sb = rendezvous_score(hash, b.owner);
        if (sa != sb)
            return sa > sb;
        return a.owner < b.owner;
    }
    /* Same owner and version: the release ends the claim. */
    return a.kind == ClaimKind::release && b.kind == ClaimKind::claim;
}

bool claim_wins(const Claim &a, const Claim &b) noexcept
{
    return claim_wins(a, b, flow_hash(a.key));
}

bool claim_supersedes(const Claim *current, const Claim &incoming, uint32_t hash) noexcept
{
    return current == nullptr || claim_wins(incoming, *current, hash);
}

Claim claim_of_record(const FlowKey &key, OwnerRecord r) noexcept
{
    Claim c;
    c.key = key;
    c.owner = r.owner;
    c.version = r.version;
    c.kind = (r.flags & gossip_flag::released) != 0 ? ClaimKind::release : ClaimKind::claim;
    return c;
}

namespace {

/* splitmix64 step: a full-avalanche 64-bit mix (also used by rendezvous_score). */
uint64_t mix64(uint64_t x) noexcept
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t absorb(uint64_t state, const uint8_t *p, size_t n) noexcept
{
    /* Byte-wise so that the result is independent of alignment and
     * endianness; keys are at most 48 bytes, this is not a hot path. */
    for (size_t i = 0; i < n; ++i)
        state = mix64(state ^ p[i]);
    return state;
}

} // namespace

uint64_t digest_term(const FlowKey &key, uint16_t version) noexcept
{
    /* Only the meaningful key fields, never the padding, so two nodes that
     * built the same key differently still agree. */
    uint64_t s =
        mix64(static_cast<uint64_t>(key.family) << 32 | uint64_t{key.proto()} << 16 | version);
    if (key.family == Family::ipv4) {
        const FlowKey4 &k = key.v4;
        s = absorb(s, reinterpret_cast<const uint8_t *>(&k.client_addr), 4);
        s = absorb(s, reinterpret_cast<const uint8_t *>(&k.vip_addr), 4);
    } else {
        const FlowKey6 &k = key.v6;
        s = absorb(s, k.client_addr, 16);
        s = absorb(s, k.vip_addr, 16);
    }
    return mix64(s ^ (uint64_t{key.client_port()} << 16 | key.vip_port()));
}

} // namespace flowhome
