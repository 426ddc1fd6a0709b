/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The EAL options that flowhome derives from the node file, in one list:
 * the loader refuses them in eal.extra, and eal_arguments() derives none of
 * a kind that the command line gives itself.
 *
 * Pure; callable anywhere; no EAL needed. Nothing here throws.
 */
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace flowhome {

/** What a reserved option sets. */
enum class EalSetting : uint8_t { file_prefix, memory, huge_pages, lcores };

struct ReservedEalOption {
    std::string_view name; /**< as written in full: "--file-prefix", "-m" */
    std::string_view key;  /**< the node-file key that sets it: "eal.file_prefix" */
    EalSetting setting;
};

/**
 * The reserved option that the argument @p arg gives, read as the EAL's
 * getopt_long() reads it, or nullptr for none:
 * - a long option alone or with "=value", or any prefix of its name
 *   ("--file-pref=x" is --file-prefix: getopt_long takes an unambiguous
 *   prefix, and a prefix of several names is refused by the EAL anyway);
 * - a short option with its value attached ("-m512"), also after the EAL's
 *   short options that take no value ("-vm512" is -v, then -m512).
 * "--" alone, which ends the options, gives none.
 */
const ReservedEalOption *reserved_eal_option(std::string_view arg) noexcept;

/**
 * Whether the EAL argument @p arg turns off the EAL's shared configuration:
 * --no-shconf, or --in-memory, which implies it, read as getopt_long()
 * reads them (with "=value", or abbreviated: "--no-shc"; a prefix of
 * several options' names the EAL refuses itself). Without it the EAL locks
 * nothing, and the node locks its runtime folder (main.cpp).
 */
bool eal_option_unshares(std::string_view arg) noexcept;

/** The file prefix the EAL arguments @p args give it, the last as getopt
 *  reads them ("--file-prefix=x", "--file-prefix x", abbreviated), or
 *  empty for none. */
std::string_view eal_file_prefix(std::span<const std::string> args) noexcept;

/** A file prefix of dots alone: the EAL's runtime folder,
 *  /var/run/dpdk/<prefix>, would be another's ("..": /var/run). */
bool file_prefix_names_no_folder(std::string_view prefix) noexcept;

} // namespace flowhome
