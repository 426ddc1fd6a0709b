/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the configuration tests. */
#pragma once
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "flowhome/config.hpp"

using flowhome::ConfigError;
using flowhome::EncapKind;
using flowhome::Family;
using flowhome::IpAddr;
using flowhome::load_config;
using flowhome::load_config_text;
using flowhome::MacAddr;
using flowhome::MissPolicy;
using flowhome::NodeConfig;
using flowhome::PortRole;
using flowhome::TableMemory;
using flowhome::VipProtocol;

#ifndef FLOWHOME_SOURCE_DIR
#error "tests/unit/meson.build defines FLOWHOME_SOURCE_DIR (the source root) for this test"
#endif

namespace {

/*
 * The smallest valid file: ten lines, so that a snippet appended to it starts
 * on line 11 and the tests can name exact lines.
 */
inline const std::string kMinimal = R"(node:
  id: 1
ports:
  - name: uplink
    device: net_ring0
    ipv4: 192.0.2.1
lcores:
  workers: [2]
vips:
  - address: 198.51.100.10
)";

inline ConfigError expect_error(const std::string &text)
{
    try {
        (void)load_config_text(text, "t.yaml");
    } catch (const ConfigError &e) {
        return e;
    }
    FAIL("loaded without a ConfigError:\n" << text);
    throw std::logic_error("unreachable: FAIL throws");
}

/* Asserts the position, key and message of the error @p text provokes. */
inline void check_error(const std::string &text, int line, int column, const std::string &key,
                        const std::string &message)
{
    const ConfigError e = expect_error(text);
    INFO("what(): " << e.what());
    CHECK(e.file() == "t.yaml");
    CHECK(e.line() == line);
    if (column > 0)
        CHECK(e.column() == column);
    CHECK(e.key() == key);
    CHECK(e.message() == message);
}

inline IpAddr ip(const char *text)
{
    return *IpAddr::parse(text);
}

inline MacAddr mac(const char *text)
{
    return *MacAddr::parse(text);
}

/* A file in the test's temporary directory, removed on scope exit. */
struct TempFile {
    std::filesystem::path path;
    explicit TempFile(const std::string &content)
        : path(std::filesystem::temp_directory_path() /
               ("flowhome-test-config-" + std::to_string(::getpid()) + ".yaml"))
    {
        std::ofstream(path) << content;
    }
    ~TempFile() { std::filesystem::remove(path); }
    TempFile(const TempFile &) = delete;
    TempFile &operator=(const TempFile &) = delete;
};

} // namespace
