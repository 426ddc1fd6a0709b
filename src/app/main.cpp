/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flowhome: run one node of a connection-steering fleet.
 *
 *   flowhome -c FILE [--check] [-- EAL-ARGS...]
 */
#include <csignal>
#include <cstdio>
#include <cstring>
#include <getopt.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "flowhome/config.hpp"
#include "flowhome/eal.hpp"
#include "flowhome/node.hpp"

namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_report = 0;

void on_signal(int sig)
{
    g_signal = sig;
}

void on_report(int)
{
    g_report = 1;
}

void usage(FILE *out, const char *prog)
{
    fmt::print(out,
               "usage: {} -c FILE [--check] [-- EAL-ARGS...]\n"
               "\n"
               "  -c, --config FILE   node configuration (YAML; see docs/configuration.md)\n"
               "      --check         validate the configuration and exit\n"
               "  -h, --help          this text\n"
               "  -V, --version       print the version\n"
               "\n"
               "Arguments after -- are passed to the DPDK EAL after those the\n"
               "configuration implies. SIGUSR1 prints every counter; SIGINT or SIGTERM\n"
               "stops the node and prints them.\n",
               prog);
}

} // namespace

int main(int argc, char **argv)
{
    std::string config_path;
    bool check_only = false;
    static const option kOptions[] = {
        {"config", required_argument, nullptr, 'c'},
        {"check", no_argument, nullptr, 'k'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", kOptions, nullptr)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check_only = true;
            break;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        case 'V':
            fmt::print("flowhome {}\n", FLOWHOME_VERSION);
            return 0;
        default:
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (config_path.empty()) {
        usage(stderr, argv[0]);
        return 2;
    }
    std::vector<std::string> extra(argv + optind, argv + argc);

    flowhome::NodeConfig cfg;
    try {
        cfg = flowhome::load_config(config_path);
    } catch (const flowhome::ConfigError &e) {
        fmt::print(stderr, "flowhome: {}\n", e.what());
        return 2;
    }
    if (check_only) {
        fmt::print("{}: ok\n", config_path);
        return 0;
    }

    std::vector<std::string> eal_args = flowhome::eal_arguments(cfg, argv[0], extra);
    std::vector<char *> eal_argv;
    for (std::string &a : eal_args)
        eal_argv.push_back(a.data());
    eal_argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(eal_args.size()), eal_argv.data()) < 0) {
        fmt::print(stderr, "flowhome: cannot initialise DPDK: {}\n", rte_strerror(rte_errno));
        return 1;
    }

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGUSR1, on_report);

    int rc = 0;
    try {
        flowhome::Node node(cfg);
        node.start();
        fmt::print("flowhome: node {} running with {} worker(s); SIGINT or SIGTERM stops it\n",
                   cfg.node_id, cfg.lcores.workers.size());
        std::fflush(stdout);
        while (g_signal == 0) {
            usleep(20 * 1000);
            if (g_report != 0) {
                g_report = 0;
                fmt::print("{}--\n", node.stats_report());
                std::fflush(stdout);
            }
        }
        node.stop();
        fmt::print("flowhome: stopped by signal {}\n{}", static_cast<int>(g_signal),
                   node.stats_report());
        std::fflush(stdout);
    } catch (const std::exception &e) {
        fmt::print(stderr, "flowhome: {}\n", e.what());
        rc = 1;
    }
    rte_eal_cleanup();
    return rc;
}
