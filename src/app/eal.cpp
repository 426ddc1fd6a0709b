/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/eal.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace flowhome {
namespace {

bool names_lcores(const std::vector<std::string> &args)
{
    return std::any_of(args.begin(), args.end(), [](const std::string &a) {
        return a == "-l" || a.rfind("-l", 0) == 0 || a.rfind("--lcores", 0) == 0 || a == "-c" ||
               a.rfind("--main-lcore", 0) == 0;
    });
}

bool names_option(const std::vector<std::string> &args, const std::string &option)
{
    return std::any_of(args.begin(), args.end(),
                       [&](const std::string &a) { return a.rfind(option, 0) == 0; });
}

} // namespace

std::vector<std::string> eal_arguments(const NodeConfig &cfg, const std::string &program,
                                       const std::vector<std::string> &extra)
{
    std::vector<std::string> args{program};

    if (!names_lcores(cfg.eal.extra) && !names_lcores(extra)) {
        if (cfg.lcores.cpus.empty()) {
            std::set<unsigned> lcores{cfg.lcores.main, cfg.lcores.control};
            lcores.insert(cfg.lcores.workers.begin(), cfg.lcores.workers.end());
            args.push_back("-l");
            args.push_back(fmt::format("{}", fmt::join(lcores, ",")));
        } else {
            std::vector<std::string> placed;
            for (const auto &[lcore, cpu] : cfg.lcores.cpus)
                placed.push_back(fmt::format("{}@{}", lcore, cpu));
            args.push_back(fmt::format("--lcores={}", fmt::join(placed, ",")));
        }
        args.push_back(fmt::format("--main-lcore={}", cfg.lcores.main));
    }

    args.push_back("-m");
    args.push_back(std::to_string(cfg.eal.memory_mb));
    if (!cfg.eal.huge_pages) {
        /* Without hugepages the EAL cannot share memory between processes;
         * --no-shconf keeps it from trying. */
        args.push_back("--no-huge");
        args.push_back("--no-shconf");
    }
    /* A prefix given on the command line wins: several processes started
     * from one file need distinct ones. */
    if (!names_option(extra, "--file-prefix"))
        args.push_back("--file-prefix=" + (cfg.eal.file_prefix.empty()
                                               ? fmt::format("flowhome{}", cfg.node_id)
                                               : cfg.eal.file_prefix));

    bool any_pci = false;
    for (const PortConfig &p : cfg.ports) {
        if (p.is_vdev()) {
            args.push_back("--vdev=" + p.device);
        } else {
            args.push_back("-a");
            args.push_back(p.device);
            any_pci = true;
        }
    }
    if (!any_pci)
        args.push_back("--no-pci");

    args.insert(args.end(), cfg.eal.extra.begin(), cfg.eal.extra.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

} // namespace flowhome
