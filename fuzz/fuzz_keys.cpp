/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for parse_key_file(): any text as a gossip key file.
 *
 * Run it with scripts/fuzz (which builds it), or by hand from build-fuzz:
 *   build-fuzz/fuzz/fuzz_keys -max_total_time=60 /tmp/keys_work fuzz/corpus/keys
 * (libFuzzer writes new inputs to the first directory: keep it outside the tree.)
 *
 * Checks, trapping when one breaks:
 *  - the only exception is GossipKeyError, and its message starts with the
 *    file's name and a line number ("name:N: ...") or the name alone (the
 *    file defines no key);
 *  - a ring it returns holds one or two keys, of distinct non-zero ids and
 *    16 to 64 bytes each, and sends with one of them;
 *  - the ring is what the text says, read again here line by line with
 *    a stream: one key per `key` line, in order, with the bytes its hex
 *    digits spell; the send key the `send` line's id, else the highest;
 *  - that ring, written back as a key file, parses to the same ring: same
 *    ids in the same order, same bytes, same send key.
 */
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "flowhome/gossip_auth.hpp"

using namespace flowhome;

namespace {

constexpr std::string_view kName = "keys.txt";

void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "keys.txt:N: ..." or "keys.txt: ..." */
bool well_formed_error(std::string_view what)
{
    if (!what.starts_with(kName))
        return false;
    what.remove_prefix(kName.size());
    if (what.starts_with(": "))
        return true;
    if (!what.starts_with(':'))
        return false;
    what.remove_prefix(1);
    size_t digits = 0;
    while (digits < what.size() && is_digit(what[digits]))
        ++digits;
    return digits > 0 && what.substr(digits).starts_with(": ");
}

std::string write_back(const KeyRing &ring)
{
    std::string text;
    for (const GossipKey &k : ring.keys()) {
        text += fmt::format("key {} ", k.id);
        for (size_t i = 0; i < k.len; ++i)
            text += fmt::format("{:02x}", k.bytes[i]);
        text += '\n';
    }
    text += fmt::format("send {}\n", ring.send_key_id());
    return text;
}

void check_ring(const KeyRing &ring)
{
    const auto keys = ring.keys();
    check(!keys.empty() && keys.size() <= kKeyRingCapacity);
    for (size_t i = 0; i < keys.size(); ++i) {
        check(keys[i].id != 0);
        check(keys[i].len >= kGossipKeyMinLen && keys[i].len <= kGossipKeyMaxLen);
        for (size_t j = 0; j < i; ++j)
            check(keys[j].id != keys[i].id);
    }
    check(ring.find(ring.send_key_id()) != nullptr);
}

/* The text of an accepted file, read again: each of its key lines must be
 * in the ring at its place, and its send line must have chosen the send key. */
void check_matches_text(const KeyRing &ring, std::string_view text)
{
    std::istringstream lines{std::string(text)};
    std::string line;
    size_t index = 0;
    uint16_t send = 0;
    uint16_t highest = 0;
    while (std::getline(lines, line)) {
        line = line.substr(0, line.find('#'));
        for (char &c : line)
            if (c == '\r' || c == '\t')
                c = ' ';
        std::istringstream words(line);
        std::string directive;
        unsigned id = 0;
        if (!(words >> directive))
            continue;
        check(static_cast<bool>(words >> id));
        if (directive == "send") {
            send = static_cast<uint16_t>(id);
            continue;
        }
        std::string hex;
        check(directive == "key" && static_cast<bool>(words >> hex));
        check(index < ring.keys().size());
        const GossipKey &k = ring.keys()[index++];
        check(k.id == id && 2u * k.len == hex.size());
        for (size_t i = 0; i < k.len; ++i)
            check(k.bytes[i] == std::stoul(hex.substr(2 * i, 2), nullptr, 16));
        highest = std::max(highest, k.id);
    }
    check(index == ring.keys().size());
    check(ring.send_key_id() == (send != 0 ? send : highest));
}

bool same(const KeyRing &a, const KeyRing &b)
{
    if (a.keys().size() != b.keys().size() || a.send_key_id() != b.send_key_id())
        return false;
    for (size_t i = 0; i < a.keys().size(); ++i) {
        const GossipKey &x = a.keys()[i];
        const GossipKey &y = b.keys()[i];
        if (x.id != y.id || x.len != y.len ||
            !std::equal(x.bytes.begin(), x.bytes.begin() + x.len, y.bytes.begin()))
            return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    KeyRing ring;
    try {
        ring = parse_key_file(text, kName);
    } catch (const GossipKeyError &e) {
        check(well_formed_error(e.what()));
        return 0;
    } catch (...) {
        check(false);
    }
    check_ring(ring);
    try {
        check_matches_text(ring, text);
        check(same(parse_key_file(write_back(ring), kName), ring));
    } catch (...) {
        check(false);
    }
    return 0;
}
