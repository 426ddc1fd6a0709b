/* SPDX-License-Identifier: BSD-3-Clause */
#include "flowhome/eal.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "flowhome/eal_options.hpp"

namespace flowhome {
namespace {

/* Whether @p args give an option that sets @p setting, in any form the EAL reads. */
bool sets(const std::vector<std::string> &args, EalSetting setting)
{
    return std::any_of(args.begin(), args.end(), [&](const std::string &a) {
        const ReservedEalOption *o = reserved_eal_option(a);
        return o != nullptr && o->setting == setting;
    });
}

} // namespace

std::vector<std::string> eal_arguments(const NodeConfig &cfg, const std::string &program,
                                       const std::vector<std::string> &extra)
{
    std::vector<std::string> args{program};

    if (!sets(cfg.eal.extra, EalSetting::lcores) && !sets(extra, EalSetting::lcores)) {
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
    if (!sets(extra, EalSetting::file_prefix))
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
