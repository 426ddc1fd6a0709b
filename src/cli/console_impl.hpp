/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals of the command layer shared by its files: the context a
 * command runs with, the handlers, and small formatting helpers. Runs on
 * the console's thread (main lcore or socket thread), never on a worker.
 */
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "flowhome/cli.hpp"
#include "flowhome/node.hpp"
#include "flowhome/packet.hpp"

namespace flowhome {

struct Console::Baseline {
    std::map<std::string, uint64_t> values; /* MetricSample::key() -> value at `clear stats` */
};

struct CommandContext {
    Node &node;
    const Console::Options &opt;
    Console::Baseline &baseline;
    CaptureManager *capture;
    std::atomic<bool> &quit;
    std::vector<std::string> args; /* the words after the command's keywords */
    /* Why the last on_control() was false, for control_timeout(). */
    mutable ControlLoop::Run last_run = ControlLoop::Run::done;

    /** Runs @p fn on the control lcore; false when it did not run it. */
    bool on_control(const std::function<void(uint64_t now_us)> &fn) const
    {
        last_run = node.control().run_on_control(fn, opt.control_timeout);
        return last_run == ControlLoop::Run::done;
    }
};

using CommandHandler = CommandResult (*)(CommandContext &);

inline CommandResult ok(std::string text = {})
{
    return CommandResult{true, std::move(text)};
}

inline CommandResult fail(std::string message)
{
    if (message.empty() || message.back() != '\n')
        message += '\n';
    return CommandResult{false, std::move(message)};
}

/** What a command says when on_control() did not run its request. */
inline CommandResult control_timeout(const CommandContext &c)
{
    if (c.last_run == ControlLoop::Run::queue_full)
        return fail("the control lcore's request queue is full (it has not taken up the "
                    "requests before this one); nothing was changed");
    if (c.last_run == ControlLoop::Run::no_queue)
        return fail("the control lcore takes no requests (its request queue could not be "
                    "created, or the request found no memory); nothing was changed");
    return fail(fmt::format("the control lcore did not answer within {} ms; nothing was changed",
                            c.opt.control_timeout.count()));
}

/** Parses a decimal number in [lo, hi]; nullopt when it is not one. */
std::optional<uint64_t> parse_number(std::string_view s, uint64_t lo, uint64_t hi);
/** Why parse_number() refused @p s, for the value named @p what:
 *  "port '70000' is out of range (1..65535)", "port 'http' is not a number". */
std::string bad_number(std::string_view what, std::string_view s, uint64_t lo, uint64_t hi);

/* show.cpp */
CommandResult cmd_show_node(CommandContext &c);
CommandResult cmd_show_peers(CommandContext &c);
CommandResult cmd_show_ports(CommandContext &c);
CommandResult cmd_show_workers(CommandContext &c);
CommandResult cmd_show_stats(CommandContext &c);
CommandResult cmd_show_metrics(CommandContext &c);
CommandResult cmd_clear_stats(CommandContext &c);

/* show flows' filters: in any order, each keyword followed by its value
 * (the command table's syntax names them, completion and '?' follow them). */
struct FlowsFilter {
    std::string_view keyword;
    std::string_view value;
};
inline constexpr std::array<FlowsFilter, 3> kFlowsFilters{
    {{"vip", "<vip-ip>"}, {"owner", "<node-id>"}, {"limit", "<n>"}}};

/* flows.cpp */
/** @p a: <proto> <client-ip>:<port> <vip-ip>:<port> (at least three words; IPv6 in
 *  brackets). nullopt when malformed, with the message in @p err. */
std::optional<FlowKey> parse_flow(const std::vector<std::string> &a, CommandResult &err);
CommandResult cmd_show_flows(CommandContext &c);
CommandResult cmd_show_flow(CommandContext &c);
CommandResult cmd_flow_claim(CommandContext &c);
CommandResult cmd_flow_release(CommandContext &c);

/* settings.cpp */
CommandResult cmd_set_drain(CommandContext &c);
CommandResult cmd_set_miss_policy(CommandContext &c);
CommandResult cmd_set_log_level(CommandContext &c);
CommandResult cmd_gossip_key_reload(CommandContext &c);
/** DPDK log level names, index + 1 = RTE_LOG_* value. */
std::span<const std::string_view> log_level_names() noexcept;

/* capture.cpp */
CommandResult cmd_capture_start(CommandContext &c);
CommandResult cmd_capture_stop(CommandContext &c);

} // namespace flowhome
