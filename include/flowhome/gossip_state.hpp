/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The ownership conflict rule and the table digests of the gossip protocol:
 * pure functions, so every node computes the same answers and the tests and
 * the fuzzer call exactly what the control lcore runs.
 *
 * Convergence: for each flow a node keeps the entry (claim or release) that
 * wins under claim_wins(), a strict total order on (version, owner, kind)
 * for one flow. Keeping the maximum is commutative, associative and
 * idempotent, so nodes that received the same entries in any order, any
 * number of times, hold the same entry (a state-based CRDT: a
 * join-semilattice). Releases are therefore kept as tombstones until aged
 * out; a release that arrived before its claim must still beat it. (The
 * engine's guesses, claims it holds without having heard them from their
 * owner, are not statements and may give way to a lower version.)
 *
 * Threading: pure functions and plain values (a DigestBook is one
 * thread's).
 * Errors: none; nothing here throws.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flowhome/ownership.hpp"
#include "flowhome/packet.hpp"
#include "flowhome/types.hpp"

namespace flowhome {

/**
 * RFC 1982 serial number comparison of 16-bit versions: -1 when a < b,
 * +1 when a > b, 0 when equal or when they are exactly 2^15 apart (a case
 * RFC 1982 section 3.2 leaves undefined; treating it as equal hands the
 * decision to the deterministic tie-breaks, which is symmetric).
 * Versions of one flow stay far closer than 2^15 apart: a flow is re-claimed
 * a handful of times in its life.
 */
constexpr int serial_compare(uint16_t a, uint16_t b) noexcept
{
    if (a == b)
        return 0;
    const uint16_t ahead = static_cast<uint16_t>(b - a); /* how far b is ahead of a */
    if (ahead == 0x8000)
        return 0;
    return ahead < 0x8000 ? -1 : 1;
}
static_assert(serial_compare(1, 2) == -1 && serial_compare(2, 1) == 1);
static_assert(serial_compare(0xFFFF, 0) == -1 && serial_compare(0, 0xFFFF) == 1, "wraps");
static_assert(serial_compare(0, 0x8000) == 0 && serial_compare(0x8000, 0) == 0);

enum class ClaimKind : uint8_t { claim = 0, release = 1 };

/** One ownership statement about a flow, from a claim, release or sync record. */
struct Claim {
    FlowKey key;
    NodeId owner = kInvalidNode;
    uint16_t version = 0;
    ClaimKind kind = ClaimKind::claim;

    friend bool operator==(const Claim &, const Claim &) = default;
};

/**
 * True when @p a supersedes @p b. Both must be about the same flow, whose
 * flow_hash() is @p hash. The order, first difference decides:
 *  1. the higher version (RFC 1982 serial order) wins: a node that takes a
 *     flow over (failover, reuse after a release) claims version + 1;
 *  2. the higher rendezvous_score(hash, owner) wins: two nodes that claimed
 *     the same new flow concurrently (both at version 1) settle on the one
 *     stateless placement would have picked among the two;
 *  3. the lower node id wins (a 64-bit score tie, for completeness);
 *  4. a release beats the claim of the same owner and version it ends.
 * Strict: false for equal statements; for two different statements exactly
 * one of claim_wins(a, b) and claim_wins(b, a) is true.
 */
bool claim_wins(const Claim &a, const Claim &b, uint32_t hash) noexcept;
/** As above, computing flow_hash(a.key). */
bool claim_wins(const Claim &a, const Claim &b) noexcept;

/**
 * Should @p incoming replace @p current (nullptr: the flow is unknown)?
 * True when there is no current entry or incoming wins. A release for an
 * unknown flow is stored too (as a tombstone), so that its claim, arriving
 * later, loses to it.
 */
bool claim_supersedes(const Claim *current, const Claim &incoming, uint32_t hash) noexcept;

/* ---- mapping to the ownership table's record ---- */

namespace gossip_flag {
/** OwnerRecord flag of a tombstone: the flow was released; lookups treat it as absent. */
inline constexpr uint8_t released = 0x02;
/** OwnerRecord flag of a guess: a claim not heard from its owner (this
 *  node's failover rewrite of a dead or restarted owner's flow to another
 *  node, or another owner's claim relayed by a sync). The owner's own claim
 *  clears it. Local: no frame carries it (a sync answer sends the record as
 *  a plain claim, or as a move), and the workers ignore it. */
inline constexpr uint8_t guessed = 0x04;
/** OwnerRecord flag of a guess that a failover made: the flow moved to its
 *  owner, its heir, from a dead or restarted node, here or at the node a
 *  sync relayed it from. Set with guessed and cleared with it. A sync
 *  answer marks the entry (FlowEntry::moved) where the record is of the
 *  heir's current life, so that an heir whose start-up sync came after
 *  the walks, and which holds nothing of the flow, claims it. */
inline constexpr uint8_t moved = 0x08;
} // namespace gossip_flag
static_assert(((gossip_flag::released | gossip_flag::guessed | gossip_flag::moved) &
               owner_flag::pinned) == 0 &&
                  (gossip_flag::released & gossip_flag::guessed) == 0 &&
                  ((gossip_flag::released | gossip_flag::guessed) & gossip_flag::moved) == 0,
              "flag bits must not overlap");

/** The table record of @p c, stamped with @p epoch. */
constexpr OwnerRecord to_owner_record(const Claim &c, uint16_t epoch) noexcept
{
    return OwnerRecord{c.owner, c.version, epoch,
                       c.kind == ClaimKind::release ? gossip_flag::released : uint8_t{0}, 0};
}

/** The claim a table record states about @p key. */
Claim claim_of_record(const FlowKey &key, OwnerRecord r) noexcept;

/* ---- digests: detecting divergence without sending the table ---- */

/**
 * The 64-bit term of one live claim in its owner's digest: a hash of the key
 * and the version (the owner is implied by the digest). Identical on every
 * node and build.
 */
uint64_t digest_term(const FlowKey &key, uint16_t version) noexcept;

/**
 * Count and XOR of the terms of every live claim (tombstones excluded) one
 * owner holds. XOR makes add and remove O(1) and order-independent, so the
 * control lcore keeps one per owner up to date as it applies claims, and two
 * nodes holding the same claims of an owner have equal digests.
 */
struct OwnerDigest {
    uint32_t flow_count = 0;
    uint64_t digest = 0;

    void add(uint64_t term) noexcept
    {
        ++flow_count;
        digest ^= term;
    }
    void remove(uint64_t term) noexcept
    {
        --flow_count;
        digest ^= term;
    }
    friend bool operator==(const OwnerDigest &, const OwnerDigest &) = default;
};

/**
 * digest_term() of @p n claims at once: terms[i] of keys[i] and
 * versions[i], the same values. Each term is a chain of dependent
 * splitmix64 steps (two multiplications each), one per address byte and
 * two more; computed four side by side, they share the core's multipliers
 * instead of waiting on each other.
 */
void digest_terms(const FlowKey *keys, const uint16_t *versions, size_t n,
                  uint64_t *terms) noexcept;

/**
 * Every owner's digest, as one node writes its table. A count changes at
 * once; a term waits, with up to kBatch - 1 others, until a full batch or a
 * read of a digest computes them together (digest_terms()). So a digest is
 * read through of(), which computes what waits first.
 */
class DigestBook {
public:
    static constexpr unsigned kBatch = 32;

    explicit DigestBook(size_t owners = 0) : digests_(owners) {}

    /** The live claim {@p key, @p version} of @p owner (< the owner count) counted. */
    void add(NodeId owner, const FlowKey &key, uint16_t version) noexcept
    {
        ++digests_[owner].flow_count;
        queue(owner, key, version);
    }
    /** The live claim {@p key, @p version} of @p owner no longer counted. */
    void remove(NodeId owner, const FlowKey &key, uint16_t version) noexcept
    {
        --digests_[owner].flow_count;
        queue(owner, key, version); /* XOR: removing a term is adding it again */
    }
    /** @p owner's digest, with every claim added or removed so far. */
    const OwnerDigest &of(NodeId owner) noexcept
    {
        settle();
        return digests_[owner];
    }
    /** @p owner's digest replaced with @p d. */
    void set(NodeId owner, const OwnerDigest &d) noexcept
    {
        settle();
        digests_[owner] = d;
    }
    /** Every digest empty, nothing waiting. */
    void clear() noexcept;
    size_t owners() const noexcept { return digests_.size(); }

private:
    void queue(NodeId owner, const FlowKey &key, uint16_t version) noexcept
    {
        keys_[waiting_] = key;
        versions_[waiting_] = version;
        owners_[waiting_] = owner;
        if (++waiting_ == kBatch)
            settle();
    }
    void settle() noexcept;

    std::vector<OwnerDigest> digests_;
    unsigned waiting_ = 0;
    std::array<FlowKey, kBatch> keys_;
    std::array<uint16_t, kBatch> versions_;
    std::array<NodeId, kBatch> owners_;
};

} // namespace flowhome
