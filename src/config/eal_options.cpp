/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/eal_options.hpp"

namespace flowhome {

namespace {

constexpr ReservedEalOption kReserved[] = {
    {"--file-prefix", "eal.file_prefix", EalSetting::file_prefix},
    {"-m", "eal.memory_mb", EalSetting::memory},
    {"--socket-mem", "eal.memory_mb", EalSetting::memory},
    {"--no-huge", "eal.huge_pages: false", EalSetting::huge_pages},
    {"-l", "lcores", EalSetting::lcores},
    {"-c", "lcores", EalSetting::lcores},
    {"--lcores", "lcores", EalSetting::lcores},
    {"--main-lcore", "lcores.main", EalSetting::lcores},
};

/* The EAL's short options without a value (DPDK 22.11: "a:b:c:s:d:hl:S:m:n:r:v"). */
constexpr std::string_view kFlagsWithoutValue = "hv";

bool is_long(const ReservedEalOption &o)
{
    return o.name.starts_with("--");
}

/* @p name: what follows "--", up to any '='. */
const ReservedEalOption *long_option(std::string_view name)
{
    if (name.empty())
        return nullptr;
    for (const auto &o : kReserved)
        if (is_long(o) && o.name.substr(2).starts_with(name))
            return &o;
    return nullptr;
}

/* @p letters: what follows "-". getopt reads option letters until one takes a value. */
const ReservedEalOption *short_options(std::string_view letters)
{
    for (const char letter : letters) {
        for (const auto &o : kReserved)
            if (!is_long(o) && o.name[1] == letter)
                return &o;
        if (kFlagsWithoutValue.find(letter) == std::string_view::npos)
            return nullptr; // the rest is this option's value
    }
    return nullptr;
}

} // namespace

const ReservedEalOption *reserved_eal_option(std::string_view arg) noexcept
{
    if (arg.starts_with("--"))
        return long_option(arg.substr(2, arg.find('=') - 2));
    if (arg.starts_with("-"))
        return short_options(arg.substr(1));
    return nullptr;
}

bool eal_option_unshares(std::string_view arg) noexcept
{
    if (!arg.starts_with("--"))
        return false;
    const std::string_view name = arg.substr(2, arg.find('=') - 2);
    return !name.empty() && (std::string_view("no-shconf").starts_with(name) ||
                             std::string_view("in-memory").starts_with(name));
}

std::string_view eal_file_prefix(std::span<const std::string> args) noexcept
{
    std::string_view prefix;
    for (size_t i = 0; i < args.size(); ++i) {
        const ReservedEalOption *o = reserved_eal_option(args[i]);
        if (o == nullptr || o->setting != EalSetting::file_prefix)
            continue;
        if (const size_t eq = args[i].find('='); eq != std::string::npos)
            prefix = std::string_view(args[i]).substr(eq + 1);
        else if (i + 1 < args.size())
            prefix = args[++i];
    }
    return prefix;
}

bool file_prefix_names_no_folder(std::string_view prefix) noexcept
{
    return !prefix.empty() && prefix.find_first_not_of('.') == std::string_view::npos;
}

} // namespace flowhome
