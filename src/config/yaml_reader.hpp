/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Private to src/config: a cursor over a yaml-cpp node that carries its key
 * path ("ports[1].mtu") and its position in the file, so that every check in
 * the loader throws a ConfigError naming file, line, column and key without
 * repeating that bookkeeping.
 *
 * Threading: main lcore, start-up or console. Every function here throws
 * ConfigError on bad input and nothing else of its own (yaml-cpp exceptions
 * are converted by the loader's outer catch).
 *
 * Strictness, on purpose (docs/configuration.md "Value syntax"):
 * - integers are plain decimal scalars; no sign, no leading zero (YAML 1.1
 *   reads "010" as octal, YAML 1.2 as ten: refuse to guess), no float, and a
 *   quoted "80" is a string, not a number;
 * - booleans are plain true or false (not yes/no/on/off/1/0);
 * - a mapping key may appear once, and only the keys the caller lists.
 */
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "flowhome/config.hpp"
#include "flowhome/types.hpp"

namespace flowhome::config_detail {

/** A spelling of an enum value in the file. */
template <typename E> struct EnumName {
    std::string_view name;
    E value;
};

/** "a, b, c": used to list allowed keys and choices in messages. */
std::string join_names(const std::vector<std::string_view> &names, std::string_view sep);

/** 1-based line of a yaml-cpp mark; 0 when the mark is unknown. */
int mark_line(const YAML::Mark &m) noexcept;
/** 1-based column of a yaml-cpp mark; 0 when the mark is unknown. */
int mark_column(const YAML::Mark &m) noexcept;

class MapReader;

class Cursor {
public:
    /**
     * @p file must outlive the cursor. @p fallback is where errors point when
     * the node itself has no useful mark: yaml-cpp marks an empty value
     * ("mtu:" then a newline) at the next token, so a map value falls back to
     * its key's position.
     */
    Cursor(const std::string &file, YAML::Node node, std::string path, YAML::Mark fallback);

    const YAML::Node &node() const noexcept { return node_; }
    const std::string &path() const noexcept { return path_; }
    const std::string &file() const noexcept { return *file_; }
    YAML::Mark mark() const;
    int line() const { return mark_line(mark()); }

    [[noreturn]] void fail(const std::string &message) const;
    /** Throws at this node's position but names @p key (e.g. a missing key). */
    [[noreturn]] void fail_at(const std::string &key, const std::string &message) const;

    /** What the node holds, for "got ...": "\"abc\"", "a mapping", "nothing". */
    std::string describe() const;

    uint64_t as_uint(uint64_t min, uint64_t max) const;
    /** An integer as as_uint(), or @p keyword (then nullopt). */
    std::optional<uint64_t> as_uint_or(std::string_view keyword, uint64_t min, uint64_t max) const;
    bool as_bool() const;
    /**
     * Any scalar of valid UTF-8 without control characters (C0, DEL, C1);
     * empty only if @p allow_empty.
     */
    std::string as_string(bool allow_empty = false) const;
    /** 1..max_len of [A-Za-z0-9_.-]: names the console shows and completes. */
    std::string as_name(size_t max_len) const;
    /** A unicast address; @p want is ipv4, ipv6 or none for either. */
    IpAddr as_ip(Family want) const;
    /** A unicast, non-zero MAC address. */
    MacAddr as_mac() const;

    template <typename E, size_t N> E as_enum(const EnumName<E> (&names)[N]) const
    {
        std::vector<std::string_view> choices;
        for (const auto &n : names)
            choices.push_back(n.name);
        const std::string expected = "one of " + join_names(choices, "|");
        const std::string text = plain_scalar(expected);
        for (const auto &n : names)
            if (text == n.name)
                return n.value;
        fail(fmt::format("expected {}, got {}", expected, describe()));
    }

    /** Items of a sequence; an empty value ("peers:") is an empty sequence. */
    std::vector<Cursor> items() const;
    /** This node as a mapping with only @p allowed keys; empty value: empty mapping. */
    MapReader as_map(std::initializer_list<std::string_view> allowed) const;

    template <typename T>
    T as_uint_of(std::type_identity_t<T> min, std::type_identity_t<T> max) const
    {
        return static_cast<T>(as_uint(min, max));
    }

private:
    /** The scalar text; fails with "expected <what>" on anything else. */
    std::string scalar_text(const std::string &what) const;
    /** As scalar_text() but refuses quoted scalars (they are strings in YAML). */
    std::string plain_scalar(const std::string &what) const;
    /** @p text as a plain decimal in [min, max]; fails with "expected <what>". */
    uint64_t parse_uint(const std::string &text, const std::string &what, uint64_t min,
                        uint64_t max) const;
    /** As scalar_text(), for a string or name: a null says how to write one spelt "null". */
    std::string text_scalar(const std::string &what) const;

    const std::string *file_;
    YAML::Node node_;
    std::string path_;
    YAML::Mark fallback_;
};

/** A mapping whose keys have been checked: scalar, unique, allowed. */
class MapReader {
public:
    MapReader(const Cursor &self, std::vector<std::pair<std::string, Cursor>> entries)
        : self_(self), entries_(std::move(entries))
    {
    }

    const Cursor &self() const noexcept { return self_; }
    bool has(std::string_view key) const { return find(key).has_value(); }
    std::optional<Cursor> find(std::string_view key) const;
    /** @p key's value, or the mapping when it is absent: where to report a
     *  rule about a key that has a default. */
    Cursor find_or_self(std::string_view key) const
    {
        const auto c = find(key);
        return c ? *c : self_;
    }
    /** The value of @p key; throws "missing required key" at the mapping. */
    Cursor require(std::string_view key) const;

    /** Reads an optional key into @p out; leaves the default when absent. */
    template <typename T>
    void uint_if(std::string_view key, T &out, std::type_identity_t<T> min,
                 std::type_identity_t<T> max) const
    {
        if (auto c = find(key))
            out = c->as_uint_of<T>(min, max);
    }
    void bool_if(std::string_view key, bool &out) const;

private:
    Cursor self_;
    std::vector<std::pair<std::string, Cursor>> entries_;
};

/** "parent.key", or "key" at the top level. */
std::string child_path(const std::string &parent, std::string_view key);

/** True for IPv4 224.0.0.0/4 and IPv6 ff00::/8. */
bool is_multicast(const IpAddr &a);
enum class AddressKind : uint8_t { unicast, unspecified, multicast, broadcast, ipv4_mapped };
/** What kind of address @p a is: unicast, or why it is no host's address. */
AddressKind address_kind(const IpAddr &a);
/** "unspecified", "multicast", "broadcast", "IPv4-mapped" (unicast: ""). */
std::string_view to_string(AddressKind k);

} // namespace flowhome::config_detail
