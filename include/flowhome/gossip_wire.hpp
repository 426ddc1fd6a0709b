/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Gossip wire format: the frame header, the typed TLV records and the
 * authentication trailer, with an allocation-free writer and a validating
 * reader. The byte layout is documented in docs/gossip-protocol.md; the
 * constants below are the normative offsets and sizes.
 *
 *   frame = header (header_len bytes, 32 in version 1.0)
 *         | records (payload_length bytes, record_count TLVs)
 *         | tag (kGossipTagLen bytes, HMAC over header + records)
 *
 * All multi-byte fields are in network byte order (big endian).
 *
 * Threading: FrameWriter and FrameReader are plain values used by one
 * thread (the control lcore, the tests, the fuzzer); the free functions are
 * pure.
 * Errors: nothing here throws or allocates. Every function that reads
 * untrusted bytes is noexcept, never reads outside the span it was given and
 * reports a GossipStatus naming the first rule the frame broke.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "flowhome/packet.hpp"
#include "flowhome/types.hpp"

namespace flowhome {

/* ---- constants of the wire format ---- */

inline constexpr uint32_t kGossipMagic = 0x46484753; /* "FHGS" */
inline constexpr uint8_t kGossipVersionMajor = 1;
/* 1.1: resend records; 1.2: tombstones in sync responses (flow entry flag
 * bit 0), sent only to requesters of 1.2 or later; 1.3: the header's flags
 * name the sender's recent frames that hold nothing to resend. */
inline constexpr uint8_t kGossipVersionMinor = 3;
/** The lowest minor whose header flags are FrameHeader::bare_below. */
inline constexpr uint8_t kGossipMinorBareFrames = 3;

/** Header size written by this version; receivers accept larger (newer minor). */
inline constexpr size_t kGossipHeaderLen = 32;
/** HMAC-SHA-256 truncated to 128 bits (RFC 4868 section 2.6). */
inline constexpr size_t kGossipTagLen = 16;
/** TLV header: type u8, flags u8, value length u16. */
inline constexpr size_t kGossipTlvLen = 4;
/** Largest frame: the payload of the largest UDP datagram, whose 16-bit
 *  length counts its 8-byte header too (RFC 768). The payload length field
 *  (16 bits) and the authenticator (up to 65534 bytes signed) take more. */
inline constexpr size_t kGossipMaxFrame = 0xFFFF - 8;

/** Header field offsets (version 1.0). */
namespace gossip_hdr {
inline constexpr size_t magic = 0;           /* u32 */
inline constexpr size_t version_major = 4;   /* u8 */
inline constexpr size_t version_minor = 5;   /* u8 */
inline constexpr size_t header_len = 6;      /* u8: bytes up to the first record */
inline constexpr size_t flags = 7;           /* u8: 1.3: bare_below; before: sent 0 */
inline constexpr size_t cluster_id = 8;      /* u32 */
inline constexpr size_t sender = 12;         /* u16 */
inline constexpr size_t key_id = 14;         /* u16 */
inline constexpr size_t incarnation = 16;    /* u32 */
inline constexpr size_t record_count = 20;   /* u16 */
inline constexpr size_t payload_length = 22; /* u16: record bytes, tag excluded */
inline constexpr size_t sequence = 24;       /* u64 */
} // namespace gossip_hdr
static_assert(gossip_hdr::sequence + 8 == kGossipHeaderLen, "header layout");

/** Flow entry (claim, release, sync response element) offsets. */
namespace gossip_flow {
inline constexpr size_t family = 0;      /* u8: 4 or 6 */
inline constexpr size_t proto = 1;       /* u8 */
inline constexpr size_t owner = 2;       /* u16 */
inline constexpr size_t version = 4;     /* u16 */
inline constexpr size_t client_port = 6; /* u16 */
inline constexpr size_t vip_port = 8;    /* u16 */
inline constexpr size_t flags = 10;      /* u16: sync entries: bit 0 released, bits 1..15 its age;
                                            with bit 0 clear, bit 1 moved */
inline constexpr uint16_t flag_released = 0x0001;
/** A sync entry's claim (bit 0 clear) that a failover moved to its owner. */
inline constexpr uint16_t flag_moved = 0x0002;
inline constexpr unsigned age_shift = 1;
/** Largest age a tombstone's entry carries, in seconds (15 bits). */
inline constexpr uint16_t max_age_s = 0x7FFF;
inline constexpr size_t addrs = 12; /* client address, then VIP address */
inline constexpr size_t size_v4 = addrs + size_t{2} * 4;
inline constexpr size_t size_v6 = addrs + size_t{2} * 16;
} // namespace gossip_flow
static_assert(gossip_flow::size_v4 == 20 && gossip_flow::size_v6 == 44, "flow entry layout");

/** Fixed record layouts (value bytes, TLV header excluded). */
inline constexpr size_t kDigestRecordLen = 16; /* owner u16, rsvd u16, count u32, digest u64 */
inline constexpr size_t kHeartbeatFixedLen =
    12;                                     /* node u16, state u8, flags u8, inc u32, counter u32 */
inline constexpr size_t kMemberViewLen = 8; /* node u16, state u8, flags u8, inc u32 */
inline constexpr size_t kSyncRequestLen = 16; /* target u16, owner u16, id u32, cursor u64 */
inline constexpr size_t kSyncResponseFixedLen =
    16; /* requester u16, count u16, id u32, cursor u64 */
/* Resend request and resent (1.1): node u16, rsvd u16, incarnation u32, newest u64, bitmap u64. */
inline constexpr size_t kResendRecordLen = 24;

enum class RecordType : uint8_t {
    claim = 1,          /**< the sender owns a flow (new, re-announced or taken over) */
    release = 2,        /**< the sender no longer owns a flow (connection ended) */
    digest = 3,         /**< count and XOR digest of the flows an owner holds */
    heartbeat = 4,      /**< liveness, state and the sender's view of the others */
    sync_request = 5,   /**< pull a chunk of a peer's table from a cursor */
    sync_response = 6,  /**< a chunk of claims and the cursor of the next chunk */
    resend_request = 7, /**< (1.1) ask a node to resend the flows of frames we missed */
    resent = 8,         /**< (1.1) the sender answered for these frames (flows follow) */
};

/** Membership state; `draining` is a separate flag. Wire values are fixed. */
enum class NodeState : uint8_t { alive = 0, suspect = 1, dead = 2 };
inline constexpr uint8_t kNodeStateMax = 2;
/** "alive", "suspect", "dead"; "unknown" for a value above kNodeStateMax. */
constexpr const char *node_state_name(uint8_t state) noexcept
{
    constexpr const char *kNames[] = {"alive", "suspect", "dead"};
    return state <= kNodeStateMax ? kNames[state] : "unknown";
}
constexpr const char *node_state_name(NodeState state) noexcept
{
    return node_state_name(static_cast<uint8_t>(state));
}
/** Heartbeat / member view flags byte. */
inline constexpr uint8_t kMemberFlagDraining = 0x01;

/**
 * Outcome of decoding or verifying a frame. Every failure names the rule the
 * frame broke, so it can be counted per reason (a bad frame is a counted
 * outcome, never an error).
 */
enum class GossipStatus : uint8_t {
    ok,
    truncated,             /**< shorter than the fixed header or its header_len */
    bad_magic,             /**< not a flowhome gossip frame */
    bad_version,           /**< other major version, or minor not within +-1 */
    bad_header_length,     /**< header_len below the version 1.0 header size */
    bad_length,            /**< header_len + payload_length + tag != datagram size */
    bad_sender,            /**< sender id 0 or above kMaxNodeId */
    wrong_cluster,         /**< another cluster's frame (misconfigured group) */
    own_frame,             /**< our own frame looped back by multicast */
    unknown_key,           /**< key id not in the key ring */
    bad_tag,               /**< authentication tag mismatch */
    replayed,              /**< sequence seen already, or left of the window */
    stale_incarnation,     /**< older incarnation of a sender we know restarted */
    record_truncated,      /**< a TLV header or value runs past the payload */
    record_count_mismatch, /**< records found != header record_count */
    bad_record_length,     /**< a known record's value has an impossible length */
    bad_family,            /**< flow entry family neither 4 nor 6 */
    bad_node,              /**< node id 0 or above kMaxNodeId inside a record */
    bad_state,             /**< membership state outside the enum */
    foreign_owner,         /**< claim/release/heartbeat for a node other than the sender */
    incarnation_mismatch,  /**< heartbeat incarnation differs from the header's */
    bad_entry_count,       /**< sync response count disagrees with its entries */
};
inline constexpr size_t kGossipStatusCount = static_cast<size_t>(GossipStatus::bad_entry_count) + 1;

/** Stable name of a status, for counters and logs ("bad_tag"). */
std::string_view gossip_status_name(GossipStatus s) noexcept;

/** Same major, minor within one step of ours (rolling upgrades move one minor at a time). */
constexpr bool gossip_version_compatible(uint8_t major, uint8_t minor,
                                         uint8_t our_major = kGossipVersionMajor,
                                         uint8_t our_minor = kGossipVersionMinor) noexcept
{
    return major == our_major && (minor == our_minor || minor == our_minor + 1 ||
                                  (our_minor > 0 && minor == our_minor - 1));
}

/**
 * Largest gossip frame (UDP payload) that fits a link of @p mtu bytes
 * without IP fragmentation: MTU - IP header (20 or 40) - UDP header (8),
 * capped at kGossipMaxFrame. 0 when the MTU cannot carry a header and a tag.
 */
size_t gossip_max_frame(uint32_t mtu, bool ipv6) noexcept;

/** Smallest frame the engine can work with: a header, a tag and one sync
 *  response carrying one IPv6 entry (every other record is smaller). */
inline constexpr size_t kGossipMinFrame =
    kGossipHeaderLen + kGossipTagLen + kGossipTlvLen + kSyncResponseFixedLen + gossip_flow::size_v6;

/** Smallest link MTU whose gossip_max_frame() is at least kGossipMinFrame. */
uint32_t gossip_min_mtu(bool ipv6) noexcept;

/* ---- decoded values (host byte order) ---- */

struct FrameHeader {
    uint8_t version_major = kGossipVersionMajor;
    uint8_t version_minor = kGossipVersionMinor;
    uint8_t header_len = kGossipHeaderLen;
    uint32_t cluster_id = 0;
    NodeId sender = kInvalidNode;
    uint16_t key_id = 0;
    uint32_t incarnation = 0;
    uint16_t record_count = 0;
    uint16_t payload_length = 0;
    uint64_t sequence = 0;
    /** 1.3: bit i set: the sender's frame sequence - 1 - i was bare, with no
     *  claim or release a resend would bring (0 from earlier minors). */
    uint8_t bare_below = 0;
};

/** A claim, a release or one element of a sync response. */
struct FlowEntry {
    FlowKey key;
    NodeId owner = kInvalidNode;
    uint16_t version = 0;
    /** A tombstone (the owner released the flow at this version), in a sync
     * response (1.2); claim and release records send it clear, and their
     * type, not this flag, says which they are. */
    bool released = false;
    /** For a tombstone: seconds since its holder stamped it, at most
     * gossip_flow::max_age_s, so that the requester's copy ages out with
     * the others instead of a whole timeout later. 0 otherwise. */
    uint16_t age_s = 0;
    /** In a sync response claim: the responder holds it as a failover's
     *  move to the owner, which the owner has not claimed yet
     *  (gossip_flag::moved); flags bit 1 with bit 0 clear. */
    bool moved = false;

    friend bool operator==(const FlowEntry &, const FlowEntry &) = default;
};

struct DigestRecord {
    NodeId owner = kInvalidNode;
    uint32_t flow_count = 0;
    uint64_t digest = 0;

    friend bool operator==(const DigestRecord &, const DigestRecord &) = default;
};

struct MemberView {
    NodeId node = kInvalidNode;
    NodeState state = NodeState::alive;
    bool draining = false;
    uint32_t incarnation = 0;

    friend bool operator==(const MemberView &, const MemberView &) = default;
};

/**
 * Iterates the elements of a list record that FrameReader already validated,
 * so next() cannot fail: it returns false only at the end.
 */
class FlowEntryCursor {
public:
    FlowEntryCursor() = default;
    FlowEntryCursor(const uint8_t *p, const uint8_t *end) noexcept : p_(p), end_(end) {}
    bool next(FlowEntry &out) noexcept;

private:
    const uint8_t *p_ = nullptr;
    const uint8_t *end_ = nullptr;
};

class MemberViewCursor {
public:
    MemberViewCursor() = default;
    MemberViewCursor(const uint8_t *p, const uint8_t *end) noexcept : p_(p), end_(end) {}
    bool next(MemberView &out) noexcept;

private:
    const uint8_t *p_ = nullptr;
    const uint8_t *end_ = nullptr;
};

struct HeartbeatRecord {
    NodeId node = kInvalidNode; /**< always the sender */
    NodeState state = NodeState::alive;
    bool draining = false;
    uint32_t incarnation = 0; /**< always the header's incarnation */
    uint32_t counter = 0;     /**< increases with every heartbeat of one incarnation */
    uint16_t view_count = 0;
    MemberViewCursor views; /**< the sender's view of other nodes (advisory) */
};

struct SyncRequestRecord {
    NodeId target = kInvalidNode;       /**< the node asked to answer */
    NodeId owner_filter = kInvalidNode; /**< only flows of this owner; 0 = all */
    uint32_t request_id = 0;
    uint64_t cursor = 0; /**< 0 = from the start; otherwise a previous next_cursor */

    friend bool operator==(const SyncRequestRecord &, const SyncRequestRecord &) = default;
};

/**
 * Resend request (the receiver names the sender's frames it missed) and
 * resent (the sender's answer: these frames' claims and releases are in
 * this frame or in the ones that follow it). Bit i of @p missing names
 * sequence number newest - 1 - i of incarnation @p incarnation.
 */
struct ResendRecord {
    NodeId node = kInvalidNode; /**< request: the node asked; resent: the sender */
    uint32_t incarnation = 0;
    uint64_t newest = 0;
    uint64_t missing = 0;

    friend bool operator==(const ResendRecord &, const ResendRecord &) = default;
};

struct SyncResponseRecord {
    NodeId requester = kInvalidNode;
    uint16_t entry_count = 0;
    uint32_t request_id = 0;
    uint64_t next_cursor = 0; /**< 0 = the table is complete */
    FlowEntryCursor entries;
};

/** One decoded record; the member named by `type` is valid. */
struct GossipRecord {
    RecordType type = RecordType::claim;
    FlowEntry flow;            /**< claim, release */
    DigestRecord digest;       /**< digest */
    HeartbeatRecord heartbeat; /**< heartbeat */
    SyncRequestRecord sync_request;
    SyncResponseRecord sync_response;
    ResendRecord resend; /**< resend_request, resent */
};

/* ---- decoding ---- */

/**
 * Decodes and checks the fixed header of @p frame: size, magic, version,
 * header length, total length (header + payload + tag == frame size) and
 * sender id. Cluster, key and tag are checked by FrameVerifier.
 */
GossipStatus decode_gossip_header(std::span<const uint8_t> frame, FrameHeader &out) noexcept;

/**
 * Validating reader. open() checks the header and walks every record once
 * (lengths, counts, families, node ids, states), so a frame is either
 * accepted whole or rejected whole: the control lcore never applies half a
 * frame. next() then yields the known records; unknown types (a newer minor
 * version) are skipped, counted in unknown_records().
 *
 * The reader points into the caller's bytes, which must outlive it.
 */
class FrameReader {
public:
    GossipStatus open(std::span<const uint8_t> frame) noexcept;

    const FrameHeader &header() const noexcept { return hdr_; }
    /** Bytes covered by the tag (header + records). Valid after open(). */
    std::span<const uint8_t> signed_bytes() const noexcept { return signed_; }
    std::span<const uint8_t> tag() const noexcept { return tag_; }
    /** Records of unknown type seen by open(). */
    uint32_t unknown_records() const noexcept { return unknown_; }

    /** Next known record; false at the end (or when open() failed). */
    bool next(GossipRecord &out) noexcept;

private:
    FrameHeader hdr_{};
    std::span<const uint8_t> signed_{};
    std::span<const uint8_t> tag_{};
    const uint8_t *pos_ = nullptr;
    const uint8_t *end_ = nullptr;
    uint32_t unknown_ = 0;
};

/* ---- encoding ---- */

/**
 * Appends records into a caller-provided buffer. Every add_*() returns false,
 * leaving the frame unchanged, when the record would not fit in max_frame
 * (tag included): the caller then finishes and sends the frame and begins a
 * new one. Node ids and families are the caller's responsibility (asserted
 * in debug builds); the writer never writes outside its buffer.
 */
class FrameWriter {
public:
    /** @p max_frame: e.g. gossip_max_frame(mtu); clamped to the buffer size. */
    FrameWriter(std::span<uint8_t> buffer, size_t max_frame) noexcept;

    /** Starts a frame with @p hdr (record_count and payload_length are ignored). */
    void begin(const FrameHeader &hdr) noexcept;

    bool add_claim(const FlowEntry &e) noexcept { return add_flow(RecordType::claim, e); }
    bool add_release(const FlowEntry &e) noexcept { return add_flow(RecordType::release, e); }
    bool add_digest(const DigestRecord &d) noexcept;
    bool add_heartbeat(const HeartbeatRecord &hb, std::span<const MemberView> views) noexcept;
    bool add_sync_request(const SyncRequestRecord &r) noexcept;
    /** @p type: RecordType::resend_request or RecordType::resent. */
    bool add_resend(RecordType type, const ResendRecord &r) noexcept;

    /**
     * A sync response is built in three steps: begin (false when not even an
     * empty response fits), entries until one does not fit, then end with the
     * cursor the next request should carry (0 when the table is complete).
     * No other record may be added between begin and end.
     */
    bool begin_sync_response(NodeId requester, uint32_t request_id) noexcept;
    bool add_sync_entry(const FlowEntry &e) noexcept;
    void end_sync_response(uint64_t next_cursor) noexcept;

    /** Adds a record of any type; used for relaying and by the fuzzer's round trip. */
    bool add(const GossipRecord &r) noexcept;
    /** Adds a record of a type this version does not know (tests of forward compatibility). */
    bool add_raw(uint8_t type, std::span<const uint8_t> value) noexcept;

    uint16_t record_count() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    /** Room left for record bytes (TLV headers included). */
    size_t room() const noexcept { return limit_ - len_; }

    /**
     * Writes the final counts into the header; returns the signed region
     * (header + records). The tag goes right after it: see
     * Authenticator::seal(), which needs kGossipTagLen more bytes of the buffer.
     */
    std::span<uint8_t> finish() noexcept;

private:
    bool add_flow(RecordType type, const FlowEntry &e) noexcept;
    uint8_t *reserve(RecordType type, size_t value_len) noexcept;

    std::span<uint8_t> buf_;
    size_t limit_ = 0; /**< max_frame - tag */
    size_t len_ = 0;
    uint16_t count_ = 0;
    size_t sync_record_ = 0; /**< offset of an open sync response; 0 if none */
    uint16_t sync_entries_ = 0;
};

/** Encoded size of one flow entry of @p f (0 for Family::none). */
constexpr size_t gossip_flow_entry_size(Family f) noexcept
{
    return f == Family::ipv4 ? gossip_flow::size_v4 : f == Family::ipv6 ? gossip_flow::size_v6 : 0;
}

} // namespace flowhome
