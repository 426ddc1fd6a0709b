/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Catch2 main for the dpdk tier: one EAL per test process, without
 * hugepages or PCI, with a file prefix of its own that is removed at exit
 * whatever the outcome (and by the next run, if this one is killed).
 */
#define CATCH_CONFIG_RUNNER
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <rte_eal.h>

#include "dpdk_main.hpp"

namespace {

std::vector<std::function<void()>> g_cleanups;

/* A run that crashed or was killed (an abort under ASan, meson's timeout)
 * could not remove its prefix folder: remove those of test processes that
 * are gone. Only folders named after this tier's prefix, only of dead pids. */
void remove_stale_prefixes()
{
    std::error_code ec;
    for (const auto &e : std::filesystem::directory_iterator("/var/run/dpdk", ec)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with("fhtest") || name.size() == 6 ||
            name.find_first_not_of("0123456789", 6) != std::string::npos)
            continue;
        const long pid = std::strtol(name.c_str() + 6, nullptr, 10);
        if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
            std::filesystem::remove_all(e.path(), ec);
    }
}

} // namespace

void flowhome::test::before_eal_cleanup(std::function<void()> fn)
{
    g_cleanups.push_back(std::move(fn));
}

int main(int argc, char **argv)
{
    remove_stale_prefixes();
    const std::string prefix = "fhtest" + std::to_string(getpid());
    std::vector<std::string> args{argv[0],
                                  "--no-huge",
                                  "-m",
                                  "256",
                                  "--no-pci",
                                  "--no-shconf",
                                  "--file-prefix=" + prefix,
                                  "--log-level=lib.eal:warning",
                                  "-l",
                                  "0,1"};
    std::vector<char *> eal_argv;
    for (std::string &a : args)
        eal_argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
        std::fprintf(stderr, "cannot initialise the EAL\n");
        std::error_code ec; /* it may have made its folder */
        std::filesystem::remove_all("/var/run/dpdk/" + prefix, ec);
        return 1;
    }
    const int rc = Catch::Session().run(argc, argv);
    for (auto &fn : g_cleanups)
        fn();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all("/var/run/dpdk/" + prefix, ec);
    return rc;
}
