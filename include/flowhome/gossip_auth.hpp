/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Gossip authentication and replay protection.
 *
 *  - KeyRing: at most two shared keys by key id (the current one and the one
 *    a rotation is moving to or from). Frames are sent with the ring's send
 *    key and accepted under either key.
 *  - load_key_file(): the key file (format in docs/gossip-protocol.md):
 *        # comment
 *        key <id 1..65535> <32..128 hex digits>
 *        send <id>          (optional; default: the highest id)
 *  - Authenticator: HMAC-SHA-256 truncated to 128 bits (RFC 2104, RFC 4868
 *    section 2.6) computed with Intel IPsec-MB, over header + records.
 *  - ReplayTable: per sender, the newest incarnation and a 64-frame sliding
 *    window over sequence numbers (RFC 4303 section 3.4.3).
 *  - FrameVerifier: the receive pipeline, in order: header, cluster, loop,
 *    key, tag, incarnation/replay, records; the replay window advances only
 *    for a frame that passed every check.
 *
 * Threading: an Authenticator owns its IPsec-MB managers and must be used by
 * one thread at a time (the control lcore); so must a FrameVerifier and its
 * ReplayTable. KeyRing is a plain value. Stats are readable from anywhere.
 * Errors: start-up functions (load_key_file, parse_key_file, the
 * Authenticator constructor) throw GossipKeyError; everything that handles
 * frames is noexcept and returns a GossipStatus.
 */
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "flowhome/gossip_wire.hpp"
#include "flowhome/stats.hpp"

struct IMB_MGR;

namespace flowhome {

inline constexpr size_t kGossipKeyMinLen = 16; /**< 128 bits, RFC 4868 section 2.1.1 floor */
inline constexpr size_t kGossipKeyMaxLen = 64; /**< one SHA-256 block: no key pre-hashing */
inline constexpr size_t kKeyRingCapacity = 2;
inline constexpr unsigned kReplayWindowSize = 64;

/** Start-up error in the key file or the crypto engine; the message names file and line. */
class GossipKeyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct GossipKey {
    uint16_t id = 0;
    uint8_t len = 0;
    std::array<uint8_t, kGossipKeyMaxLen> bytes{};
};

class KeyRing {
public:
    /**
     * Adds a key. False (ring unchanged) when the id is 0 or present, the
     * ring already holds two keys, or the length is outside [16, 64].
     * The highest id becomes the send key unless set_send_key() chose one.
     */
    bool add(uint16_t id, std::span<const uint8_t> key) noexcept;
    /** Sends with @p id from now on; false when the ring has no such key. */
    bool set_send_key(uint16_t id) noexcept;
    /** Id of the key frames are sent with; 0 when the ring is empty. */
    uint16_t send_key_id() const noexcept;
    /** The key of @p id, or nullptr. */
    const GossipKey *find(uint16_t id) const noexcept;
    std::span<const GossipKey> keys() const noexcept { return {keys_.data(), count_}; }

private:
    std::array<GossipKey, kKeyRingCapacity> keys_{};
    size_t count_ = 0;
    uint16_t send_ = 0; /**< explicit choice; 0 = the highest id */
};

/**
 * Parses key-file text. @p name labels messages ("name:line: ...").
 * Throws GossipKeyError on: an unknown directive, a bad or repeated id, bad
 * hex, a key shorter than 16 or longer than 64 bytes, a third key, a `send`
 * naming no key, a repeated `send`, trailing tokens, or no key at all.
 */
KeyRing parse_key_file(std::string_view text, std::string_view name);

struct KeyFile {
    KeyRing ring;
    uint32_t mode = 0; /**< permission bits: key_file_warning() reads them */
};

/** Reads and parses @p path. Throws GossipKeyError (unreadable file or parse_key_file errors). */
KeyFile load_key_file(const std::string &path);

/** What to warn the operator of about @p f, read from @p path; empty when nothing. */
std::string key_file_warning(const KeyFile &f, std::string_view path);

/** Compares two byte strings in time independent of their contents (not of their length). */
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept;

/** Whether the authenticator may use the CPU's SHA extensions. */
enum class ShaExtensions : uint8_t {
    when_present, /**< where the CPU has them (the default) */
    off,          /**< never: the code path of CPUs without them, for tests and comparisons */
};

/** Most tags Authenticator::verify_batch() has in the lanes at once (a receive burst). */
inline constexpr size_t kAuthBatchMax = 32;

/** One received frame's tag to check: what verify() takes, for verify_batch(). */
struct TagCheck {
    uint16_t key_id = 0;
    std::span<const uint8_t> signed_bytes;
    std::span<const uint8_t> tag;
};

/** HMAC-SHA-256-128 over gossip frames, with IPsec-MB. */
class Authenticator {
public:
    /** Allocates and initialises an IPsec-MB manager (the SSE one on CPUs with the SHA
     *  extensions, else the widest the CPU has) and, on CPUs with both the SHA
     *  extensions and AVX-512, the AVX-512 one for large batches; throws GossipKeyError. */
    explicit Authenticator(ShaExtensions sha = ShaExtensions::when_present);
    ~Authenticator();
    Authenticator(const Authenticator &) = delete;
    Authenticator &operator=(const Authenticator &) = delete;

    /** Installs @p ring, precomputing each key's HMAC inner and outer states. */
    void set_keys(const KeyRing &ring) noexcept;
    const KeyRing &keys() const noexcept { return ring_; }

    /**
     * Computes the 16-byte tag of @p data under key @p key_id into @p out.
     * False when the ring has no such key (or the engine refused the job).
     */
    bool compute_tag(uint16_t key_id, std::span<const uint8_t> data,
                     std::span<uint8_t, kGossipTagLen> out) noexcept;

    /**
     * Appends the tag to a frame finished by FrameWriter: the first
     * @p signed_len bytes of @p buffer are header + records; the key is the
     * one the header's key id names. Returns the whole frame's length, or 0
     * when the buffer has no room for the tag or the key is unknown.
     */
    size_t seal(std::span<uint8_t> buffer, size_t signed_len) noexcept;

    /** True when the main manager (lone frames) computes SHA-256 with the CPU's SHA
     *  extensions. */
    bool uses_sha_extensions() const noexcept;

    /** ok, unknown_key or bad_tag; the comparison is constant-time. A batch of one. */
    GossipStatus verify(uint16_t key_id, std::span<const uint8_t> signed_bytes,
                        std::span<const uint8_t> tag) noexcept;

    /**
     * Checks the tags of several frames together, kAuthBatchMax at a time:
     * out[i] is what verify() says of checks[i]. The frames share the
     * manager's multi-buffer lanes, so a burst costs less than its frames
     * one by one (docs/performance.md, "The authentication code path").
     * @p out holds at least checks.size() entries.
     */
    void verify_batch(std::span<const TagCheck> checks, std::span<GossipStatus> out) noexcept;

    /** The fewest tags left over from whole passes of the AVX-512 lanes
     *  that get a pass of their own (fewer go to the SHA extensions); 0 when
     *  every tag stays on the one manager (a CPU without the SHA
     *  extensions, or without AVX-512). */
    size_t wide_batch_min() const noexcept { return wide_ != nullptr ? kWideBatchMin : 0; }

private:
    struct Precomputed {
        uint16_t id = 0;
        alignas(16) std::array<uint8_t, 32> ipad_state{};
        alignas(16) std::array<uint8_t, 32> opad_state{};
    };
    const Precomputed *find(uint16_t id) const noexcept;
    /** Submits @p checks to @p mgr and flushes it; the tags computed go to
     *  @p tags, each job's outcome to @p out (ok: its tag is to compare). */
    void run_batch(IMB_MGR *mgr, std::span<const TagCheck> checks,
                   std::span<std::array<uint8_t, kGossipTagLen>> tags,
                   std::span<GossipStatus> out) noexcept;

    /* The AVX-512 manager's lanes, and from how many tags a partial pass
     * of them costs less than the SHA extensions' two lanes: 10 of 1392
     * bytes, 15 of 200 (docs/performance.md, "The authentication code
     * path"); 12 between. */
    static constexpr size_t kWideLanes = 16;
    static constexpr size_t kWideBatchMin = 12;

    IMB_MGR *mgr_ = nullptr;
    IMB_MGR *wide_ = nullptr; /**< AVX-512 lanes beside the SHA extensions, or none */
    KeyRing ring_;
    std::array<Precomputed, kKeyRingCapacity> pre_{};
    size_t pre_count_ = 0;
};

/** Result of a replay check: status, and whether the sender restarted. */
struct ReplayVerdict {
    GossipStatus status = GossipStatus::ok;
    bool first_contact = false;   /**< no frame of this sender seen before */
    bool new_incarnation = false; /**< a newer incarnation than the one known */
};

/**
 * Per-sender replay state. A sender is identified by node id and
 * incarnation: an older incarnation is stale, a newer one resets the window
 * (the restarted node counts sequence numbers from scratch), and within one
 * incarnation a sequence number is accepted once, if it is newer than the
 * highest seen or within the 63 before it: a 64-frame window, the highest
 * included (RFC 4303 section 3.4.3).
 */
class ReplayTable {
public:
    ReplayTable();

    /** Would a frame be accepted? Does not change the state. */
    ReplayVerdict check(NodeId sender, uint32_t incarnation, uint64_t sequence) const noexcept;
    /** Records an accepted frame (call only after check() said ok and the frame verified). */
    void commit(NodeId sender, uint32_t incarnation, uint64_t sequence) noexcept;

private:
    struct Slot {
        uint64_t top = 0;    /**< highest sequence accepted */
        uint64_t bitmap = 0; /**< bit i: top - i was accepted */
        uint32_t incarnation = 0;
        bool used = false;
    };
    std::vector<Slot> slots_; /**< indexed by node id, kMaxNodeId + 1 entries */
};

/** Per-reason counters of received frames. */
struct GossipRxStats {
    std::array<Counter, kGossipStatusCount> by_status{};
    Counter new_incarnations; /**< accepted frames of a sender's new life */

    uint64_t count(GossipStatus s) const noexcept
    {
        return by_status[static_cast<size_t>(s)].get();
    }
};

/** Outcome of FrameVerifier::verify. */
struct VerifyResult {
    GossipStatus status = GossipStatus::ok;
    bool first_contact = false;
    /**
     * First frame of a newer incarnation of a known sender: the sender
     * restarted, and the flows its previous incarnation owned must fail over
     * (docs/gossip-protocol.md, "Membership") before this frame's records
     * are applied.
     */
    bool new_incarnation = false;
    /** The frame's sender, once its tag has verified (also when the frame is
     *  then refused as a replay or of an older life); else kInvalidNode. */
    NodeId sender = kInvalidNode;
};

/** A received frame's checks up to its tag: the first stage of FrameVerifier. */
struct FrameCheck {
    GossipStatus status = GossipStatus::ok; /**< not ok: refused at or before its tag */
    FrameHeader header;                     /**< as decoded (unless decoding failed) */
};

class FrameVerifier {
public:
    struct Params {
        uint32_t cluster_id = 0;
        NodeId self = kInvalidNode; /**< frames from self are own_frame */
    };

    /** @p auth must outlive the verifier. Allocates the replay table (start-up). */
    FrameVerifier(const Params &params, Authenticator &auth);

    /**
     * Runs every check on one received datagram. On ok, @p reader is open on
     * @p frame and yields its records, and the sender's replay window has
     * advanced. Every outcome is counted in stats().
     */
    VerifyResult verify(std::span<const uint8_t> frame, FrameReader &reader) noexcept;

    /**
     * verify() in two stages, for a burst: screen() checks every frame up
     * to and including its tag, the tags together (Authenticator::
     * verify_batch); accept() then takes each frame in order, with its
     * check, through the rest. accept(frames[i], checks[i]) says what
     * verify(frames[i]) would at that point, and counts it. @p checks holds
     * at least frames.size() entries.
     */
    void screen(std::span<const std::span<const uint8_t>> frames,
                std::span<FrameCheck> checks) noexcept;
    VerifyResult accept(std::span<const uint8_t> frame, const FrameCheck &check,
                        FrameReader &reader) noexcept;

    ReplayTable &replay() noexcept { return replay_; }
    const GossipRxStats &stats() const noexcept { return stats_; }

private:
    /** The checks before the tag's; ok when the tag is to be checked. */
    GossipStatus check_header(std::span<const uint8_t> frame, FrameHeader &hdr) const noexcept;
    VerifyResult run(std::span<const uint8_t> frame, const FrameCheck &check,
                     FrameReader &reader) noexcept;

    Params p_;
    Authenticator &auth_;
    ReplayTable replay_;
    GossipRxStats stats_;
};

} // namespace flowhome
