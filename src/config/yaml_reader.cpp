/* SPDX-License-Identifier: BSD-3-Clause */
#include "yaml_reader.hpp"

#include <charconv>
#include <cstring>

namespace flowhome::config_detail {

namespace {

/** Long scalars are cut in messages so that one bad line cannot flood a log. */
constexpr size_t kMaxQuoted = 60;

std::string quote(std::string_view text)
{
    if (text.size() > kMaxQuoted)
        return fmt::format("{:?}...", text.substr(0, kMaxQuoted));
    return fmt::format("{:?}", text);
}

/* The path of key @p key under @p parent, for an error message: the key
 * quoted when it is not plain printable ASCII (a key that is not one of the
 * known ones may hold anything, control characters included). */
std::string path_key(const std::string &parent, const std::string &key)
{
    const bool plain =
        std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    return child_path(parent, plain ? key : quote(key));
}

bool is_quoted(const YAML::Node &n)
{
    // yaml-cpp tags a quoted scalar "!" (non-specific) and a plain one "?";
    // explicit tags never get here (yaml_screen.cpp refuses them).
    return n.Tag() == "!";
}

/*
 * Decodes the UTF-8 sequence at @p s[@p i] into @p cp and moves @p i past
 * it; false when it is not valid UTF-8 (RFC 3629: an overlong form, a
 * surrogate or a code point above U+10FFFF is not).
 */
bool next_code_point(std::string_view s, size_t &i, uint32_t &cp)
{
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
        cp = lead;
        ++i;
        return true;
    }
    // The lead byte's high bits give the length: 110xxxxx, 1110xxxx, 11110xxx.
    const size_t len = (lead & 0xe0) == 0xc0   ? 2
                       : (lead & 0xf0) == 0xe0 ? 3
                       : (lead & 0xf8) == 0xf0 ? 4
                                               : 0;
    if (len == 0 || s.size() - i < len)
        return false;
    cp = lead & (0x7fu >> len);
    for (size_t k = 1; k < len; ++k) {
        const auto next = static_cast<unsigned char>(s[i + k]);
        if ((next & 0xc0) != 0x80)
            return false;
        cp = cp << 6 | (next & 0x3fu);
    }
    i += len;
    constexpr uint32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000}; // by length: no overlong form
    return cp >= kShortest[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

enum class TextFault { none, not_utf8, control };

/* Unicode's control characters (category Cc): C0, DEL and C1 (U+0080..U+009F). */
bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* What makes @p s unfit for a string value; invalid UTF-8 before a control character. */
TextFault text_fault(std::string_view s)
{
    TextFault fault = TextFault::none;
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        if (!next_code_point(s, i, cp))
            return TextFault::not_utf8;
        if (is_control(cp))
            fault = TextFault::control;
    }
    return fault;
}

bool is_unspecified(const IpAddr &a)
{
    const size_t len = a.family == Family::ipv4 ? 4 : 16;
    for (size_t i = 0; i < len; ++i)
        if (a.bytes[i] != 0)
            return false;
    return true;
}

const char *family_name(Family f)
{
    switch (f) {
    case Family::ipv4:
        return "IPv4";
    case Family::ipv6:
        return "IPv6";
    case Family::none:
        break;
    }
    return "IPv4 or IPv6";
}

} // namespace

std::string join_names(const std::vector<std::string_view> &names, std::string_view sep)
{
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0)
            out += sep;
        out += names[i];
    }
    return out;
}

int mark_line(const YAML::Mark &m) noexcept
{
    return m.is_null() || m.line < 0 ? 0 : m.line + 1;
}

int mark_column(const YAML::Mark &m) noexcept
{
    return m.is_null() || m.column < 0 ? 0 : m.column + 1;
}

std::string child_path(const std::string &parent, std::string_view key)
{
    if (parent.empty())
        return std::string(key);
    return fmt::format("{}.{}", parent, key);
}

Cursor::Cursor(const std::string &file, YAML::Node node, std::string path, YAML::Mark fallback)
    : file_(&file), node_(std::move(node)), path_(std::move(path)), fallback_(fallback)
{
}

YAML::Mark Cursor::mark() const
{
    if (!node_.IsDefined() || node_.IsNull() || node_.Mark().is_null())
        return fallback_;
    return node_.Mark();
}

void Cursor::fail(const std::string &message) const
{
    fail_at(path_, message);
}

void Cursor::fail_at(const std::string &key, const std::string &message) const
{
    const YAML::Mark m = mark();
    throw ConfigError(*file_, mark_line(m), mark_column(m), key, message);
}

std::string Cursor::describe() const
{
    if (!node_.IsDefined() || node_.IsNull())
        return "nothing";
    if (node_.IsSequence())
        return "a sequence";
    if (node_.IsMap())
        return "a mapping";
    if (is_quoted(node_))
        return "the quoted string " + quote(node_.Scalar());
    return quote(node_.Scalar());
}

std::string Cursor::scalar_text(const std::string &what) const
{
    if (!node_.IsDefined() || !node_.IsScalar())
        fail(fmt::format("expected {}, got {}", what, describe()));
    return node_.Scalar();
}

std::string Cursor::plain_scalar(const std::string &what) const
{
    std::string text = scalar_text(what);
    if (is_quoted(node_))
        fail(fmt::format("expected {}, got {}", what, describe()));
    return text;
}

uint64_t Cursor::as_uint(uint64_t min, uint64_t max) const
{
    const std::string what = fmt::format("an integer from {} to {}", min, max);
    return parse_uint(plain_scalar(what), what, min, max);
}

std::optional<uint64_t> Cursor::as_uint_or(std::string_view keyword, uint64_t min,
                                           uint64_t max) const
{
    const std::string what = fmt::format("{} or an integer from {} to {}", keyword, min, max);
    const std::string text = plain_scalar(what);
    if (text == keyword)
        return std::nullopt;
    return parse_uint(text, what, min, max);
}

uint64_t Cursor::parse_uint(const std::string &text, const std::string &what, uint64_t min,
                            uint64_t max) const
{
    // from_chars takes no sign, no "0x" and no exponent: exactly plain decimal.
    uint64_t v = 0;
    const char *first = text.data();
    const char *last = first + text.size();
    const auto [end, ec] = std::from_chars(first, last, v);
    if (text.empty() || ec != std::errc{} || end != last)
        fail(fmt::format("expected {}, got {}", what, describe()));
    if (text.size() > 1 && text[0] == '0')
        fail(fmt::format("expected {}, got {} (a leading zero is octal in YAML 1.1: write it "
                         "without)",
                         what, describe()));
    if (v < min || v > max)
        fail(fmt::format("expected {}, got {}", what, text));
    return v;
}

bool Cursor::as_bool() const
{
    const std::string text = plain_scalar("true or false");
    if (text == "true")
        return true;
    if (text == "false")
        return false;
    fail(fmt::format("expected true or false, got {}", describe()));
}

std::string Cursor::text_scalar(const std::string &what) const
{
    /* yaml-cpp reads a plain null, Null, NULL or ~ (and an empty value) as
     * no value at all: the one way to write such a text is to quote it. */
    if (node_.IsDefined() && node_.IsNull())
        fail(fmt::format("expected {}, got nothing (YAML reads an empty value, null and ~ as "
                         "none: quote a text spelt so, \"null\")",
                         what));
    return scalar_text(what);
}

std::string Cursor::as_string(bool allow_empty) const
{
    std::string text = text_scalar("a string");
    if (text.empty() && !allow_empty)
        fail("expected a non-empty string, got an empty one");
    switch (text_fault(text)) {
    case TextFault::not_utf8:
        fail(fmt::format("expected a string of UTF-8 text, got {}", describe()));
    case TextFault::control:
        fail(fmt::format("expected a string without control characters, got {}", describe()));
    case TextFault::none:
        break;
    }
    return text;
}

std::string Cursor::as_name(size_t max_len) const
{
    const std::string what =
        fmt::format("a name of 1 to {} letters, digits, '_', '-' or '.'", max_len);
    std::string text = text_scalar(what);
    bool ok = !text.empty() && text.size() <= max_len;
    for (const char ch : text) {
        const bool alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        ok = ok && (alnum || ch == '_' || ch == '-' || ch == '.');
    }
    if (!ok)
        fail(fmt::format("expected {}, got {}", what, describe()));
    return text;
}

IpAddr Cursor::as_ip(Family want) const
{
    const std::string what = fmt::format("a unicast {} address", family_name(want));
    const std::string text = scalar_text(what);
    const auto addr = IpAddr::parse(text);
    if (!addr)
        fail(fmt::format("expected {}, got {}", what, describe()));
    if (want != Family::none && addr->family != want)
        fail(fmt::format("expected {}, got the {} address {}", what, family_name(addr->family),
                         quote(text)));
    if (const AddressKind kind = address_kind(*addr); kind != AddressKind::unicast)
        fail(fmt::format("expected {}, got the {} address {}{}", what, to_string(kind), quote(text),
                         kind == AddressKind::ipv4_mapped ? "; write the IPv4 address" : ""));
    return *addr;
}

MacAddr Cursor::as_mac() const
{
    const std::string what = "a unicast MAC address like 02:00:5e:00:53:01";
    const std::string text = scalar_text(what);
    const auto mac = MacAddr::parse(text);
    if (!mac)
        fail(fmt::format("expected {}, got {}", what, describe()));
    // The least significant bit of the first octet is the group bit (IEEE 802).
    if ((mac->bytes[0] & 0x01) != 0)
        fail(fmt::format("expected {}, got the group (multicast) address {}", what, quote(text)));
    if (*mac == MacAddr{})
        fail(fmt::format("expected {}, got the all-zero address", what));
    return *mac;
}

std::vector<Cursor> Cursor::items() const
{
    std::vector<Cursor> out;
    if (!node_.IsDefined() || node_.IsNull())
        return out;
    if (!node_.IsSequence())
        fail(fmt::format("expected a sequence, got {}", describe()));
    size_t i = 0;
    for (const auto &item : node_) {
        // An empty item ("- " then a newline) has no mark of its own: point at the list.
        const YAML::Mark fallback = item.Mark().is_null() ? mark() : item.Mark();
        out.emplace_back(*file_, item, fmt::format("{}[{}]", path_, i), fallback);
        ++i;
    }
    return out;
}

MapReader Cursor::as_map(std::initializer_list<std::string_view> allowed) const
{
    std::vector<std::pair<std::string, Cursor>> entries;
    std::vector<int> key_lines; // parallel to entries, for the duplicate-key message
    if (!node_.IsDefined() || node_.IsNull())
        return MapReader(*this, std::move(entries));
    if (!node_.IsMap())
        fail(fmt::format("expected a mapping, got {}", describe()));

    for (auto it = node_.begin(); it != node_.end(); ++it) {
        // Copies: yaml-cpp's it->first lives in a temporary proxy, a reference would dangle.
        const YAML::Node key_node = it->first;
        const YAML::Node value_node = it->second;
        const YAML::Mark key_mark = key_node.Mark().is_null() ? mark() : key_node.Mark();
        const Cursor key_cursor(*file_, key_node, path_, key_mark);
        if (!key_node.IsScalar())
            key_cursor.fail(fmt::format("expected a key name, got {}", key_cursor.describe()));
        const std::string key = key_node.Scalar();
        const std::string path = child_path(path_, key);

        bool known = false;
        for (const auto a : allowed)
            known = known || a == key;
        if (!known)
            key_cursor.fail_at(
                path_key(path_, key),
                fmt::format("unknown key {}; allowed keys: {}", quote(key),
                            join_names(std::vector<std::string_view>(allowed), ", ")));
        // yaml-cpp keeps both entries of a repeated key and lookups see the first:
        // a later, silently ignored value is exactly the mistake to report.
        for (size_t i = 0; i < entries.size(); ++i)
            if (entries[i].first == key)
                key_cursor.fail_at(path, fmt::format("duplicate key {} (first at line {})",
                                                     quote(key), key_lines[i]));
        entries.emplace_back(key, Cursor(*file_, value_node, path, key_mark));
        key_lines.push_back(mark_line(key_mark));
    }
    return MapReader(*this, std::move(entries));
}

std::optional<Cursor> MapReader::find(std::string_view key) const
{
    for (const auto &[k, c] : entries_)
        if (k == key)
            return c;
    return std::nullopt;
}

Cursor MapReader::require(std::string_view key) const
{
    if (auto c = find(key))
        return *c;
    self_.fail_at(child_path(self_.path(), key),
                  fmt::format("missing required key {}", quote(key)));
}

void MapReader::bool_if(std::string_view key, bool &out) const
{
    if (auto c = find(key))
        out = c->as_bool();
}

bool is_multicast(const IpAddr &a)
{
    if (a.family == Family::ipv4)
        return (a.bytes[0] & 0xf0) == 0xe0;
    return a.bytes[0] == 0xff;
}

AddressKind address_kind(const IpAddr &a)
{
    if (is_unspecified(a))
        return AddressKind::unspecified;
    if (is_multicast(a))
        return AddressKind::multicast;
    if (a.family == Family::ipv4 && a.v4_be() == 0xffffffffu)
        return AddressKind::broadcast;
    /* ::ffff:0:0/96 stands for an IPv4 address inside a host's stack and
     * never appears in a packet (RFC 4291 2.5.5.2, RFC 6890): no peer,
     * port or VIP has one. */
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a.family == Family::ipv6 &&
        std::memcmp(a.bytes.data(), kMappedPrefix, sizeof(kMappedPrefix)) == 0)
        return AddressKind::ipv4_mapped;
    return AddressKind::unicast;
}

std::string_view to_string(AddressKind k)
{
    switch (k) {
    case AddressKind::unicast:
        break;
    case AddressKind::unspecified:
        return "unspecified";
    case AddressKind::multicast:
        return "multicast";
    case AddressKind::broadcast:
        return "broadcast";
    case AddressKind::ipv4_mapped:
        return "IPv4-mapped";
    }
    return "";
}

} // namespace flowhome::config_detail
