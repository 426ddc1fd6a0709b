/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The conflict rule and digests (docs/gossip-protocol.md, "Conflict rule"
 * and "Healing"). Pure functions: the same inputs give the same answer on
 * every node, which is what makes the tables converge.
 */
#include "flowhome/gossip_state.hpp"
#include "flowhome/placement.hpp"

#include <algorithm>

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

/* What a claim's term is made of: a seed from the family, protocol and
 * version, the two addresses absorbed byte by byte (4 or 16 bytes each),
 * and a last word of the two ports. Only the meaningful key fields, never
 * the padding, so two nodes that built the same key differently agree. */
struct TermInput {
    uint64_t seed;
    const uint8_t *client;
    const uint8_t *vip;
    uint64_t ports;
};

TermInput term_input(const FlowKey &key, uint16_t version) noexcept
{
    TermInput in;
    in.seed =
        mix64(static_cast<uint64_t>(key.family) << 32 | uint64_t{key.proto()} << 16 | version);
    if (key.family == Family::ipv4) {
        in.client = reinterpret_cast<const uint8_t *>(&key.v4.client_addr);
        in.vip = reinterpret_cast<const uint8_t *>(&key.v4.vip_addr);
    } else {
        in.client = key.v6.client_addr;
        in.vip = key.v6.vip_addr;
    }
    in.ports = uint64_t{key.client_port()} << 16 | key.vip_port();
    return in;
}

constexpr size_t address_len(const FlowKey &key) noexcept
{
    return key.family == Family::ipv4 ? 4 : 16;
}

/* Byte-wise so that the result is independent of alignment and endianness. */
template <size_t Len> uint64_t term_of(const TermInput &in) noexcept
{
    uint64_t s = in.seed;
    for (size_t i = 0; i < Len; ++i)
        s = mix64(s ^ in.client[i]);
    for (size_t i = 0; i < Len; ++i)
        s = mix64(s ^ in.vip[i]);
    return mix64(s ^ in.ports);
}

/* term_of() of four inputs, each step of the four chains side by side. */
template <size_t Len> void terms_of4(const TermInput *in, uint64_t *out) noexcept
{
    uint64_t s0 = in[0].seed, s1 = in[1].seed, s2 = in[2].seed, s3 = in[3].seed;
    for (size_t i = 0; i < Len; ++i) {
        s0 = mix64(s0 ^ in[0].client[i]);
        s1 = mix64(s1 ^ in[1].client[i]);
        s2 = mix64(s2 ^ in[2].client[i]);
        s3 = mix64(s3 ^ in[3].client[i]);
    }
    for (size_t i = 0; i < Len; ++i) {
        s0 = mix64(s0 ^ in[0].vip[i]);
        s1 = mix64(s1 ^ in[1].vip[i]);
        s2 = mix64(s2 ^ in[2].vip[i]);
        s3 = mix64(s3 ^ in[3].vip[i]);
    }
    out[0] = mix64(s0 ^ in[0].ports);
    out[1] = mix64(s1 ^ in[1].ports);
    out[2] = mix64(s2 ^ in[2].ports);
    out[3] = mix64(s3 ^ in[3].ports);
}

/* The terms of the claims at @p at (all of one address length), four at a time. */
template <size_t Len>
void terms_of_family(const FlowKey *keys, const uint16_t *versions, const uint8_t *at, size_t n,
                     uint64_t *terms) noexcept
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        TermInput in[4];
        uint64_t out[4];
        for (size_t l = 0; l < 4; ++l)
            in[l] = term_input(keys[at[i + l]], versions[at[i + l]]);
        terms_of4<Len>(in, out);
        for (size_t l = 0; l < 4; ++l)
            terms[at[i + l]] = out[l];
    }
    for (; i < n; ++i)
        terms[at[i]] = term_of<Len>(term_input(keys[at[i]], versions[at[i]]));
}

} // namespace

uint64_t digest_term(const FlowKey &key, uint16_t version) noexcept
{
    const TermInput in = term_input(key, version);
    return address_len(key) == 4 ? term_of<4>(in) : term_of<16>(in);
}

void digest_terms(const FlowKey *keys, const uint16_t *versions, size_t n, uint64_t *terms) noexcept
{
    /* The four lanes of a group run the same number of steps: within each
     * block of 64, the claims are split by address length. */
    constexpr size_t kBlock = 64;
    for (size_t base = 0; base < n; base += kBlock) {
        const size_t m = std::min(kBlock, n - base);
        uint8_t short_at[kBlock];
        uint8_t long_at[kBlock];
        size_t n_short = 0;
        size_t n_long = 0;
        for (size_t i = 0; i < m; ++i) {
            if (address_len(keys[base + i]) == 4)
                short_at[n_short++] = static_cast<uint8_t>(i);
            else
                long_at[n_long++] = static_cast<uint8_t>(i);
        }
        terms_of_family<4>(keys + base, versions + base, short_at, n_short, terms + base);
        terms_of_family<16>(keys + base, versions + base, long_at, n_long, terms + base);
    }
}

void DigestBook::settle() noexcept
{
    if (waiting_ == 0)
        return;
    uint64_t terms[kBatch];
    digest_terms(keys_.data(), versions_.data(), waiting_, terms);
    for (unsigned i = 0; i < waiting_; ++i)
        digests_[owners_[i]].digest ^= terms[i];
    waiting_ = 0;
}

void DigestBook::clear() noexcept
{
    waiting_ = 0;
    std::fill(digests_.begin(), digests_.end(), OwnerDigest{});
}

} // namespace flowhome
