/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Private to src/config: a first pass over a node file's text, before
 * yaml-cpp builds a tree of it, that refuses what the tree would hide or
 * make costly to read. yaml-cpp's event parser sees the file as written,
 * where the tree has already resolved it.
 *
 * Threading: main lcore, start-up or console.
 */
#pragma once

#include <string>

namespace flowhome::config_detail {

/**
 * Refuses a NUL byte, a file without a YAML document or with more than one,
 * and YAML anchors, aliases and tags, in that order of checks; the message
 * names @p name and the position. Throws ConfigError, and lets yaml-cpp's parser
 * exceptions (syntax errors, nesting too deep) through for the caller to
 * convert.
 */
void screen_yaml(const std::string &text, const std::string &name);

} // namespace flowhome::config_detail
