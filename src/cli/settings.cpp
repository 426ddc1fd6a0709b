/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * set drain | miss-policy | log-level, gossip key reload, capture. Settings
 * the workers read are atomics in DatapathShared; the gossip engine is
 * touched only on the control lcore.
 */
#include <array>

#include <rte_log.h>

#include "console_impl.hpp"
#include "flowhome/capture.hpp"
#include "flowhome/gossip_auth.hpp"
#include "flowhome/gossip_engine.hpp"

namespace flowhome {
namespace {

/* RTE_LOG_EMERG (1) .. RTE_LOG_DEBUG (8). */
constexpr std::array<std::string_view, 8> kLogLevels = {"emergency", "alert",  "critical", "error",
                                                        "warning",   "notice", "info",     "debug"};

} // namespace

std::span<const std::string_view> log_level_names() noexcept
{
    return kLogLevels;
}

CommandResult cmd_set_drain(CommandContext &c)
{
    const std::string &v = c.args[0];
    if (v != "on" && v != "off")
        return fail(fmt::format("invalid value '{}' for drain; expected on or off", v));
    const bool on = v == "on";
    std::atomic<bool> &draining = c.node.shared().draining;
    if (GossipEngine *e = c.node.engine()) {
        /* The engine announces it in a heartbeat at once; the workers
         * stop claiming as soon as the flag flips. Both on the control
         * lcore, in one step: two consoles setting it at once leave the
         * workers and the cluster told the same. */
        if (!c.on_control([&](uint64_t now_us) {
                e->set_draining(on, now_us);
                draining.store(on, std::memory_order_relaxed);
            }))
            return control_timeout(c);
    } else {
        draining.store(on, std::memory_order_relaxed);
    }
    return ok(on ? "draining: serving owned connections, sending new ones to other nodes\n"
                 : "not draining: taking new connections\n");
}

CommandResult cmd_set_miss_policy(CommandContext &c)
{
    const std::string &v = c.args[0];
    MissPolicy p;
    if (v == "drop")
        p = MissPolicy::drop;
    else if (v == "local")
        p = MissPolicy::local;
    else if (v == "hash")
        p = MissPolicy::hash;
    else
        return fail(fmt::format("invalid miss policy '{}'; expected drop, local or hash", v));
    c.node.shared().miss_policy.store(p, std::memory_order_relaxed);
    return ok(fmt::format("miss-policy {}\n", to_string(p)));
}

CommandResult cmd_set_log_level(CommandContext &c)
{
    const std::string &v = c.args[0];
    for (size_t i = 0; i < kLogLevels.size(); ++i) {
        if (kLogLevels[i] == v || std::to_string(i + 1) == v) {
            /* Each log type has a level of its own, which the global one
             * does not raise: set both, or "debug" would log nothing new. */
            const auto level = static_cast<uint32_t>(i + 1);
            rte_log_set_global_level(level);
            rte_log_set_level_pattern("*", level);
            return ok(fmt::format("log-level {}\n", kLogLevels[i]));
        }
    }
    return fail(fmt::format("invalid log level '{}'; expected one of {} (or 1..8)", v,
                            fmt::join(kLogLevels, ", ")));
}

CommandResult cmd_gossip_key_reload(CommandContext &c)
{
    GossipEngine *e = c.node.engine();
    if (e == nullptr)
        return fail("gossip is off (no gossip section in the configuration): no keys to reload");
    const std::string &path = c.node.config().gossip.key_file;
    KeyFile keys;
    try {
        keys = load_key_file(path);
    } catch (const GossipKeyError &err) {
        return fail(fmt::format("key file not reloaded, the old keys stay in use: {}", err.what()));
    }
    if (keys.ring.send_key_id() == 0)
        return fail(fmt::format("{} holds no key; the old keys stay in use", path));
    if (!c.on_control([&](uint64_t) { e->set_keys(keys.ring); }))
        return control_timeout(c);
    const std::string warning = key_file_warning(keys, path);
    return ok(fmt::format("gossip keys reloaded from {}: sending with key id {}\n{}", path,
                          keys.ring.send_key_id(),
                          warning.empty() ? "" : fmt::format("warning: {}\n", warning)));
}

CommandResult cmd_capture_start(CommandContext &c)
{
    uint64_t limit = kCaptureDefaultPackets;
    if (c.args.size() == 3) {
        const auto n = parse_number(c.args[2], 1, kCaptureMaxPackets);
        if (!n)
            return fail(bad_number("packet limit", c.args[2], 1, kCaptureMaxPackets));
        limit = *n;
    }
    return ok(c.capture->start(c.args[0], c.args[1], limit));
}

CommandResult cmd_capture_stop(CommandContext &c)
{
    return ok(c.capture->stop(c.args.empty() ? "" : c.args[0]));
}

} // namespace flowhome
