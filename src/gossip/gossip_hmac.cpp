/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * HMAC-SHA-256-128 of gossip frames with Intel IPsec-MB (job API).
 *
 * HMAC (RFC 2104) is H((K ^ opad) || H((K ^ ipad) || m)). Keys are at most
 * one SHA-256 block (64 bytes), so K is the key zero-padded to 64 bytes and
 * never pre-hashed. The two one-block compressions of K ^ ipad and K ^ opad
 * do not depend on the message: they are computed once per key, when the
 * key ring is installed, with IMB_SHA256_ONE_BLOCK (the same precompute the
 * DPDK ipsec_mb PMD does), and each job starts from them. The tag is the
 * first 16 bytes of the HMAC output (RFC 4868 section 2.6, as IPsec uses it):
 * 128 bits keep forgery at 2^-128 per attempt while saving 16 bytes a frame.
 */
#include <algorithm>
#include <cstdint>
#include <cstring>

#include <intel-ipsec-mb.h>

#include "flowhome/gossip_auth.hpp"
#include "flowhome/wire.hpp"

namespace flowhome {

namespace {

constexpr size_t kShaBlock = 64;
/* IPsec-MB 1.3 refuses an HMAC-SHA-256 job over more bytes (IMB_ERR_JOB_AUTH_LEN). */
constexpr size_t kMaxSignedLen = 65534;
static_assert(kGossipMaxFrame - kGossipTagLen <= kMaxSignedLen, "every frame can be signed");
constexpr uint8_t kIpad = 0x36;
constexpr uint8_t kOpad = 0x5c;

} // namespace

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept
{
    if (a.size() != b.size())
        return false;
    /* Accumulate every difference instead of returning at the first one,
     * so the time does not tell an attacker how many leading tag bytes were
     * right. volatile keeps the compiler from turning it into an early exit. */
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < a.size(); ++i)
        diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
    return diff == 0;
}

namespace {

/** Frees @p mgr after draining its lanes; null is fine. */
void free_manager(IMB_MGR *mgr) noexcept
{
    if (mgr == nullptr)
        return;
    while (IMB_FLUSH_JOB(mgr) != nullptr) {
    }
    free_mb_mgr(mgr);
}

/** A manager initialised by @p init; throws GossipKeyError. */
template <typename Init> IMB_MGR *make_manager(uint64_t flags, Init &&init)
{
    IMB_MGR *mgr = alloc_mb_mgr(flags);
    if (mgr == nullptr)
        throw GossipKeyError("gossip authentication: cannot allocate an IPsec-MB manager");
    init(mgr);
    if (const int err = imb_get_errno(mgr); err != 0) {
        const char *what = imb_get_strerror(err);
        free_mb_mgr(mgr);
        throw GossipKeyError(
            std::string("gossip authentication: IPsec-MB initialisation failed: ") + what);
    }
    return mgr;
}

} // namespace

Authenticator::Authenticator(ShaExtensions sha)
{
    /* IMB_FLAG_SHANI_OFF hides the extensions from alloc_mb_mgr's CPU
     * detection: the manager is then chosen and runs as on a CPU without them. */
    const uint64_t flags = sha == ShaExtensions::off ? IMB_FLAG_SHANI_OFF : 0;
    /*
     * On a CPU with the SHA extensions the SSE, AVX and AVX2 managers of
     * IPsec-MB 1.3 compute HMAC-SHA-256 with them, two lanes, while the
     * AVX-512 manager runs 16 multi-buffer lanes regardless. A frame alone
     * (the tag of a frame sent, or a lone frame received) costs least with
     * the extensions: 0.93 us for 1392 bytes against 6.4 in the AVX-512
     * lanes, 15 of them empty. So the SSE manager where the extensions are
     * (alloc_mb_mgr has read the CPU's features); without them the widest
     * manager, whose lanes cost least for any number of frames. The tag is
     * the same on every code path, so nodes on different CPUs agree.
     */
    mgr_ = make_manager(flags, [](IMB_MGR *m) {
        if ((m->features & IMB_CPUFLAGS_SSE_T2) == IMB_CPUFLAGS_SSE_T2)
            init_mb_mgr_sse(m);
        else
            init_mb_mgr_auto(m, nullptr);
    });
    /* A burst of received frames fills the AVX-512 lanes: 16 frames of
     * 1392 bytes cost 0.48 us each there against 0.73 with the extensions. */
    if (uses_sha_extensions() && (mgr_->features & IMB_CPUFLAGS_AVX512) == IMB_CPUFLAGS_AVX512) {
        try {
            wide_ = make_manager(flags, [](IMB_MGR *m) { init_mb_mgr_avx512(m); });
        } catch (...) {
            free_manager(mgr_);
            throw;
        }
    }
}

bool Authenticator::uses_sha_extensions() const noexcept
{
    /* The SSE, AVX and AVX2 managers use the extensions where detected; the
     * AVX-512 one runs its multi-buffer lanes regardless. */
    return (mgr_->features & IMB_FEATURE_SHANI) != 0 && mgr_->used_arch != IMB_ARCH_AVX512;
}

Authenticator::~Authenticator()
{
    free_manager(wide_);
    free_manager(mgr_);
}

void Authenticator::set_keys(const KeyRing &ring) noexcept
{
    ring_ = ring;
    pre_count_ = 0;
    for (const GossipKey &k : ring.keys()) {
        Precomputed &p = pre_[pre_count_++];
        p.id = k.id;
        alignas(16) uint8_t block[kShaBlock];
        for (size_t i = 0; i < kShaBlock; ++i)
            block[i] = static_cast<uint8_t>((i < k.len ? k.bytes[i] : 0) ^ kIpad);
        IMB_SHA256_ONE_BLOCK(mgr_, block, p.ipad_state.data());
        for (size_t i = 0; i < kShaBlock; ++i)
            block[i] = static_cast<uint8_t>((i < k.len ? k.bytes[i] : 0) ^ kOpad);
        IMB_SHA256_ONE_BLOCK(mgr_, block, p.opad_state.data());
        /* The padded key must not linger on the stack. */
        volatile uint8_t *wipe = block;
        for (size_t i = 0; i < kShaBlock; ++i)
            wipe[i] = 0;
    }
}

const Authenticator::Precomputed *Authenticator::find(uint16_t id) const noexcept
{
    for (size_t i = 0; i < pre_count_; ++i)
        if (pre_[i].id == id)
            return &pre_[i];
    return nullptr;
}

namespace {

void fill_job(IMB_JOB *job, const uint8_t *ipad_state, const uint8_t *opad_state,
              std::span<const uint8_t> data, uint8_t *tag_out, void *user_data) noexcept
{
    job->cipher_mode = IMB_CIPHER_NULL;
    job->cipher_direction = IMB_DIR_ENCRYPT;
    job->chain_order = IMB_ORDER_HASH_CIPHER;
    job->hash_alg = IMB_AUTH_HMAC_SHA_256;
    job->src = data.data();
    job->dst = nullptr;
    job->cipher_start_src_offset_in_bytes = 0;
    job->msg_len_to_cipher_in_bytes = 0;
    job->hash_start_src_offset_in_bytes = 0;
    job->msg_len_to_hash_in_bytes = data.size();
    job->iv = nullptr;
    job->iv_len_in_bytes = 0;
    job->auth_tag_output = tag_out;
    job->auth_tag_output_len_in_bytes = kGossipTagLen;
    job->u.HMAC._hashed_auth_key_xor_ipad = ipad_state;
    job->u.HMAC._hashed_auth_key_xor_opad = opad_state;
    job->user_data = user_data;
}

} // namespace

bool Authenticator::compute_tag(uint16_t key_id, std::span<const uint8_t> data,
                                std::span<uint8_t, kGossipTagLen> out) noexcept
{
    const Precomputed *p = find(key_id);
    if (p == nullptr)
        return false;
    fill_job(IMB_GET_NEXT_JOB(mgr_), p->ipad_state.data(), p->opad_state.data(), data, out.data(),
             nullptr);
    /* One job in flight at a time: the multi-buffer manager may hold it in
     * a lane until flushed, and then it is the one returned. */
    IMB_JOB *done = IMB_SUBMIT_JOB(mgr_);
    while (done == nullptr)
        done = IMB_FLUSH_JOB(mgr_);
    return done->status == IMB_STATUS_COMPLETED;
}

size_t Authenticator::seal(std::span<uint8_t> buffer, size_t signed_len) noexcept
{
    if (signed_len < kGossipHeaderLen || buffer.size() < signed_len ||
        buffer.size() - signed_len < kGossipTagLen)
        return 0;
    const uint16_t key_id = wire::load16(buffer.data() + gossip_hdr::key_id);
    if (!compute_tag(key_id, buffer.first(signed_len),
                     buffer.subspan(signed_len).first<kGossipTagLen>()))
        return 0;
    return signed_len + kGossipTagLen;
}

GossipStatus Authenticator::verify(uint16_t key_id, std::span<const uint8_t> signed_bytes,
                                   std::span<const uint8_t> tag) noexcept
{
    const TagCheck check{key_id, signed_bytes, tag};
    GossipStatus status = GossipStatus::bad_tag;
    verify_batch({&check, 1}, {&status, 1});
    return status;
}

void Authenticator::run_batch(IMB_MGR *mgr, std::span<const TagCheck> checks,
                              std::span<std::array<uint8_t, kGossipTagLen>> tags,
                              std::span<GossipStatus> out) noexcept
{
    /* A job comes back from a submit once its lane is done, or from the
     * flush; user_data says which check it was. */
    const auto finished = [&](const IMB_JOB *job) {
        const auto i = reinterpret_cast<uintptr_t>(job->user_data);
        out[i] = job->status == IMB_STATUS_COMPLETED ? GossipStatus::ok : GossipStatus::bad_tag;
    };
    for (size_t i = 0; i < checks.size(); ++i) {
        const Precomputed *p = find(checks[i].key_id);
        if (p == nullptr) {
            out[i] = GossipStatus::unknown_key;
            continue;
        }
        fill_job(IMB_GET_NEXT_JOB(mgr), p->ipad_state.data(), p->opad_state.data(),
                 checks[i].signed_bytes, tags[i].data(), reinterpret_cast<void *>(uintptr_t{i}));
        if (const IMB_JOB *done = IMB_SUBMIT_JOB(mgr); done != nullptr)
            finished(done);
    }
    while (const IMB_JOB *done = IMB_FLUSH_JOB(mgr))
        finished(done);
}

void Authenticator::verify_batch(std::span<const TagCheck> checks,
                                 std::span<GossipStatus> out) noexcept
{
    std::array<std::array<uint8_t, kGossipTagLen>, kAuthBatchMax> tags;
    for (size_t at = 0; at < checks.size(); at += kAuthBatchMax) {
        const size_t n = std::min(checks.size() - at, kAuthBatchMax);
        const auto these = checks.subspan(at, n);
        const auto verdicts = out.subspan(at, n);
        /* Whole passes of the AVX-512 lanes, and a last partial one when it
         * is full enough to beat the SHA extensions; the rest on them. */
        size_t wide = 0;
        if (wide_ != nullptr) {
            wide = n / kWideLanes * kWideLanes;
            if (n - wide >= kWideBatchMin)
                wide = n;
        }
        const std::span<std::array<uint8_t, kGossipTagLen>> computed(tags.data(), n);
        if (wide != 0)
            run_batch(wide_, these.first(wide), computed.first(wide), verdicts.first(wide));
        if (wide != n)
            run_batch(mgr_, these.subspan(wide), computed.subspan(wide), verdicts.subspan(wide));
        for (size_t i = 0; i < n; ++i)
            if (verdicts[i] == GossipStatus::ok && !constant_time_equal(tags[i], these[i].tag))
                verdicts[i] = GossipStatus::bad_tag;
    }
}

} // namespace flowhome
