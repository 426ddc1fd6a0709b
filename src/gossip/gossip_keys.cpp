/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gossip key ring and its key file (start-up code: may throw and
 * allocate). Every error names the file and line and says what was expected.
 */
#include <algorithm>
#include <cstring>
#include <system_error>
#include <vector>

#include <sys/stat.h>

#include <fmt/format.h>

#include "flowhome/gossip_auth.hpp"
#include "flowhome/small_file.hpp"

namespace flowhome {

bool KeyRing::add(uint16_t id, std::span<const uint8_t> key) noexcept
{
    if (id == 0 || count_ == kKeyRingCapacity || find(id) != nullptr ||
        key.size() < kGossipKeyMinLen || key.size() > kGossipKeyMaxLen)
        return false;
    GossipKey &k = keys_[count_++];
    k.id = id;
    k.len = static_cast<uint8_t>(key.size());
    std::copy(key.begin(), key.end(), k.bytes.begin());
    return true;
}

bool KeyRing::set_send_key(uint16_t id) noexcept
{
    if (find(id) == nullptr)
        return false;
    send_ = id;
    return true;
}

uint16_t KeyRing::send_key_id() const noexcept
{
    if (send_ != 0)
        return send_;
    /* Default: the newest key, i.e. the highest id. Operators number keys
     * upwards as they rotate (docs/gossip-protocol.md). */
    uint16_t best = 0;
    for (size_t i = 0; i < count_; ++i)
        best = std::max(best, keys_[i].id);
    return best;
}

const GossipKey *KeyRing::find(uint16_t id) const noexcept
{
    for (size_t i = 0; i < count_; ++i)
        if (keys_[i].id == id)
            return &keys_[i];
    return nullptr;
}

namespace {

/* A key file is a few lines; anything much larger is not one. */
constexpr size_t kMaxKeyFileBytes = 64 * 1024;

struct Line {
    std::string_view name;
    unsigned number;
};

[[noreturn]] void fail(const Line &at, const std::string &what)
{
    throw GossipKeyError(fmt::format("{}:{}: {}", at.name, at.number, what));
}

std::vector<std::string_view> split_words(std::string_view line)
{
    std::vector<std::string_view> words;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            ++i;
        const size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            ++i;
        if (i > start)
            words.push_back(line.substr(start, i - start));
    }
    return words;
}

uint16_t parse_id(const Line &at, std::string_view word)
{
    unsigned long v = 0;
    bool ok = !word.empty() && word.size() <= 5;
    for (const char c : word) {
        if (c < '0' || c > '9') {
            ok = false;
            break;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (!ok || v == 0 || v > 65535)
        fail(at, fmt::format("expected a key id (decimal 1..65535), got '{}'", word));
    return static_cast<uint16_t>(v);
}

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::vector<uint8_t> parse_hex(const Line &at, uint16_t id, std::string_view word)
{
    for (size_t i = 0; i < word.size(); ++i)
        if (hex_value(word[i]) < 0)
            fail(at, fmt::format("key {}: expected hex digits, got '{}' at position {}", id,
                                 word[i], i + 1));
    if (word.size() % 2 != 0)
        fail(at,
             fmt::format("key {}: expected an even number of hex digits, got {}", id, word.size()));
    const size_t bytes = word.size() / 2;
    if (bytes < kGossipKeyMinLen)
        fail(at, fmt::format("key {} is {} bytes; at least {} bytes ({} hex digits) are required",
                             id, bytes, kGossipKeyMinLen, 2 * kGossipKeyMinLen));
    if (bytes > kGossipKeyMaxLen)
        fail(at, fmt::format("key {} is {} bytes; at most {} bytes ({} hex digits) are allowed", id,
                             bytes, kGossipKeyMaxLen, 2 * kGossipKeyMaxLen));
    std::vector<uint8_t> out(bytes);
    for (size_t i = 0; i < bytes; ++i)
        out[i] = static_cast<uint8_t>(hex_value(word[2 * i]) << 4 | hex_value(word[2 * i + 1]));
    return out;
}

} // namespace

KeyRing parse_key_file(std::string_view text, std::string_view name)
{
    KeyRing ring;
    std::array<unsigned, kKeyRingCapacity> key_lines{};
    unsigned send_line = 0;
    uint16_t send_id = 0;
    Line at{name, 0};
    size_t pos = 0;
    while (pos <= text.size()) {
        const size_t eol = std::min(text.find('\n', pos), text.size());
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        ++at.number;
        if (const size_t hash = line.find('#'); hash != std::string_view::npos)
            line = line.substr(0, hash);
        const std::vector<std::string_view> words = split_words(line);
        if (words.empty())
            continue;
        if (words[0] == "key") {
            if (words.size() < 3)
                fail(at, "expected 'key <id> <hex key material>'");
            if (words.size() > 3)
                fail(at, fmt::format("unexpected '{}' after the key material", words[3]));
            const uint16_t id = parse_id(at, words[1]);
            if (const GossipKey *dup = ring.find(id); dup != nullptr)
                fail(at, fmt::format("key id {} is defined twice (first on line {})", id,
                                     key_lines[static_cast<size_t>(dup - ring.keys().data())]));
            if (ring.keys().size() == kKeyRingCapacity)
                fail(at, fmt::format("expected at most {} keys (the current key and the one a "
                                     "rotation moves to), got a third",
                                     kKeyRingCapacity));
            std::vector<uint8_t> bytes = parse_hex(at, id, words[2]);
            key_lines[ring.keys().size()] = at.number;
            ring.add(id, bytes); /* cannot fail: every refusal was reported above */
            std::fill(bytes.begin(), bytes.end(), uint8_t{0});
        } else if (words[0] == "send") {
            if (words.size() != 2)
                fail(at, "expected 'send <id>'");
            if (send_line != 0)
                fail(at, fmt::format("'send' is given twice (first on line {})", send_line));
            send_id = parse_id(at, words[1]);
            send_line = at.number;
        } else {
            fail(at, fmt::format("expected 'key <id> <hex>' or 'send <id>', got '{}'", words[0]));
        }
    }
    if (ring.keys().empty())
        throw GossipKeyError(
            fmt::format("{}: no key defined; expected at least one 'key <id> <hex>' line", name));
    if (send_line != 0 && !ring.set_send_key(send_id))
        fail(Line{name, send_line},
             fmt::format("'send {}' names no key defined in this file", send_id));
    return ring;
}

KeyFile load_key_file(const std::string &path)
{
    /* A regular file only: a reload runs on the console's thread, and a
     * FIFO (or a device) there would hold it, and every session and scrape
     * it serves, for as long as nobody writes. */
    SmallFile f = read_small_file(path, kMaxKeyFileBytes, FileKind::regular_only);
    const auto error = [&path](std::string_view what, int err) {
        return GossipKeyError(fmt::format("{}: {} the gossip key file: {}", path, what,
                                          std::generic_category().message(err)));
    };
    switch (f.status) {
    case SmallFile::Status::ok:
        break;
    case SmallFile::Status::cannot_open:
        throw error("cannot open", f.error);
    case SmallFile::Status::cannot_read:
        throw error("cannot read", f.error);
    case SmallFile::Status::not_regular:
        throw GossipKeyError(fmt::format("{}: the gossip key file is not a regular file", path));
    case SmallFile::Status::too_large:
        throw GossipKeyError(fmt::format("{}: larger than {} KiB; a gossip key file is a few lines",
                                         path, kMaxKeyFileBytes / 1024));
    }

    KeyFile out;
    try {
        out.ring = parse_key_file(f.content, path);
    } catch (...) {
        ::explicit_bzero(f.content.data(), f.content.size());
        throw;
    }
    ::explicit_bzero(f.content.data(), f.content.size());
    out.mode = f.mode;
    return out;
}

std::string key_file_warning(const KeyFile &f, std::string_view path)
{
    /* Anyone who can read the key can forge ownership: the file should be
     * readable by the service account only. */
    if ((f.mode & (S_IRWXG | S_IRWXO)) == 0)
        return {};
    return fmt::format(
        "{} is open to its group or others (mode {:o}); it holds the cluster's gossip keys", path,
        f.mode);
}

} // namespace flowhome
