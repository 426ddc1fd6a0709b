/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the benchmarks: EAL start-up from the command line,
 * medians, and the benchmark's own options (after the EAL's, past "--").
 */
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>

#include "flowhome/config.hpp"

namespace flowhome::bench {

/** Starts the EAL with argv up to "--"; returns the index of the first benchmark option. */
inline int start_eal(int argc, char **argv)
{
    const int used = rte_eal_init(argc, argv);
    if (used < 0) {
        std::fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
        std::exit(2);
    }
    return used + 1; /* argv[used] is the program name slot the EAL shifted */
}

inline double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/** "--name value" options of the benchmark; unknown options are errors. */
class Options {
public:
    Options(int argc, char **argv, int first)
    {
        for (int i = first; i < argc; ++i)
            args_.emplace_back(argv[i]);
    }

    /** Whether "--name" is among the options not taken yet. */
    bool given(std::string_view name) const
    {
        return std::find(args_.begin(), args_.end(), name) != args_.end();
    }

    /** Takes "--name" (a flag); true when present. */
    bool flag(std::string_view name)
    {
        for (auto it = args_.begin(); it != args_.end(); ++it)
            if (*it == name) {
                args_.erase(it);
                return true;
            }
        return false;
    }

    /** Takes "--name value", or @p def. */
    std::string text(std::string_view name, std::string def)
    {
        for (auto it = args_.begin(); it != args_.end(); ++it)
            if (*it == name) {
                if (it + 1 == args_.end())
                    throw std::invalid_argument(std::string(name) + " needs a value");
                std::string v = *(it + 1);
                args_.erase(it, it + 2);
                return v;
            }
        return def;
    }

    /** Takes "--name v1,v2,..." as unsigned integers, or @p def. */
    std::vector<uint64_t> list(std::string_view name, std::vector<uint64_t> def)
    {
        const std::string v = text(name, "");
        if (v.empty())
            return def;
        std::vector<uint64_t> out;
        size_t pos = 0;
        while (pos <= v.size()) {
            const size_t comma = std::min(v.find(',', pos), v.size());
            out.push_back(std::stoull(v.substr(pos, comma - pos)));
            pos = comma + 1;
        }
        return out;
    }

    uint64_t value(std::string_view name, uint64_t def) { return list(name, {def}).at(0); }

    /** An option taking on or off. */
    bool on_off(std::string_view name, bool fallback)
    {
        const std::string v = text(name, fallback ? "on" : "off");
        if (v == "on")
            return true;
        if (v == "off")
            return false;
        throw std::invalid_argument(std::string(name) + " takes on or off, not " + v);
    }

    /** Takes "--table-memory auto|eal|thp" (as the table.memory key), default auto. */
    TableMemory table_memory()
    {
        const std::string v = text("--table-memory", "auto");
        if (v == "auto")
            return TableMemory::automatic;
        if (v == "eal")
            return TableMemory::eal;
        if (v == "thp")
            return TableMemory::thp;
        throw std::invalid_argument("--table-memory takes auto, eal or thp, not " + v);
    }

    /** Throws when an option was not taken. */
    void finish() const
    {
        if (!args_.empty())
            throw std::invalid_argument("unknown option " + args_.front());
    }

private:
    std::vector<std::string> args_;
};

} // namespace flowhome::bench
