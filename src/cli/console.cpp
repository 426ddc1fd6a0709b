/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command table, dispatch, help, suggestions and completion. Every
 * front end (cmdline console, command file, control socket) goes through
 * Console::execute().
 */
#include <algorithm>
#include <charconv>
#include <limits>

#include "console_impl.hpp"
#include "flowhome/capture.hpp"
#include "flowhome/metrics.hpp"

namespace flowhome {
namespace {

CommandResult cmd_help(CommandContext &c);

CommandResult cmd_quit(CommandContext &c)
{
    c.quit.store(true);
    return ok(c.opt.quit_ends_session_only ? "bye\n" : "stopping the node\n");
}

struct CommandDef {
    CommandSpec spec;
    CommandHandler handler;
    size_t min_args;
    size_t max_args;
};

/* The syntax names keywords first; what follows them is the arguments:
 * <x> a value, a|b a choice, [..] optional. */
/* help takes a whole command line, arguments and all: "help capture start
 * uplink /tmp/x" explains capture start. */
constexpr size_t kAnyArgs = std::numeric_limits<size_t>::max();

const CommandDef kCommands[] = {
    {{"help [command]", "list the commands, or explain one"}, cmd_help, 0, kAnyArgs},
    {{"show node", "identity, state, settings and table use of this node"}, cmd_show_node, 0, 0},
    {{"show peers", "the other nodes: address, encapsulation, membership state"},
     cmd_show_peers,
     0,
     0},
    {{"show ports", "the DPDK ports: role, device, MAC, MTU, link, queues"}, cmd_show_ports, 0, 0},
    {{"show workers", "each worker: lcore, queue, packets, drops, state"}, cmd_show_workers, 0, 0},
    {{"show stats [port|worker|gossip|drops]", "counters since the last clear stats"},
     cmd_show_stats,
     0,
     1},
    {{"show metrics", "every counter in Prometheus text format (absolute values)"},
     cmd_show_metrics,
     0,
     0},
    {{"show flows [vip <vip-ip>] [owner <node-id>] [limit <n>]",
      "ownership table entries (default limit 20, at most 10000)"},
     cmd_show_flows,
     0,
     6},
    {{"show flow <proto> <client-ip>:<port> <vip-ip>:<port>",
      "one flow: owner, version, flags, age, where its packets go"},
     cmd_show_flow,
     3,
     3},
    {{"clear stats", "start show stats counting from zero (exported counters are not reset)"},
     cmd_clear_stats,
     0,
     0},
    {{"set drain on|off", "stop or resume taking new connections"}, cmd_set_drain, 1, 1},
    {{"set miss-policy drop|local|hash", "what to do with mid-connection packets nobody owns"},
     cmd_set_miss_policy,
     1,
     1},
    {{"set log-level <level>", "DPDK log level: emergency .. debug"}, cmd_set_log_level, 1, 1},
    {{"gossip key reload", "re-read the gossip key file (key rotation)"},
     cmd_gossip_key_reload,
     0,
     0},
    {{"flow claim <proto> <client-ip>:<port> <vip-ip>:<port>",
      "take a flow for this node (pinned, gossiped to the cluster)"},
     cmd_flow_claim,
     3,
     3},
    {{"flow release <proto> <client-ip>:<port> <vip-ip>:<port>",
      "give up a flow this node owns (gossiped to the cluster)"},
     cmd_flow_release,
     3,
     3},
    {{"capture start <port-name|drop-reason> <file> [<packets>]",
      "write a port's received and sent packets, or one drop reason's, to a pcapng file "
      "(at most 1000000 packets unless said)"},
     cmd_capture_start,
     2,
     3},
    {{"capture stop [<port-name|drop-reason>]", "stop a capture and close its file"},
     cmd_capture_stop,
     0,
     1},
    {{"quit", "leave the console (and stop the node)"}, cmd_quit, 0, 0},
};

static_assert(kCaptureDefaultPackets == 1'000'000, "capture start's help text says so");

const std::vector<CommandSpec> kSpecs = [] {
    std::vector<CommandSpec> v;
    for (const CommandDef &d : kCommands)
        v.push_back(d.spec);
    return v;
}();

bool is_keyword(std::string_view w)
{
    return !w.empty() && w.find_first_of("<[|") == std::string_view::npos;
}

/* The syntax split into words: keywords first, then argument patterns. */
std::vector<std::string> syntax_words(const CommandDef &d)
{
    return split_words(d.spec.syntax);
}

size_t keyword_count(const CommandDef &d)
{
    const std::vector<std::string> w = syntax_words(d);
    size_t n = 0;
    while (n < w.size() && is_keyword(w[n]))
        ++n;
    return n;
}

size_t edit_distance(std::string_view a, std::string_view b)
{
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

/* The keyword sequences the table knows at depth @p depth after @p words. */
std::vector<std::string> keywords_after(const std::vector<std::string> &words, size_t depth)
{
    std::vector<std::string> out;
    for (const CommandDef &d : kCommands) {
        const std::vector<std::string> w = syntax_words(d);
        const size_t k = keyword_count(d);
        if (depth >= k || !std::equal(words.begin(), words.begin() + depth, w.begin()))
            continue;
        if (std::find(out.begin(), out.end(), w[depth]) == out.end())
            out.push_back(w[depth]);
    }
    return out;
}

CommandResult unknown(const std::vector<std::string> &words, size_t depth)
{
    const std::vector<std::string> known = keywords_after(words, depth);
    const std::string typed =
        fmt::format("{}", fmt::join(words.begin(), words.begin() + depth + 1, " "));
    const std::string &bad = words[depth];
    std::string best;
    size_t best_d = 3; /* suggest only close words */
    for (const std::string &k : known) {
        const size_t dist = k.rfind(bad, 0) == 0 ? 0 : edit_distance(bad, k);
        if (dist < best_d) {
            best_d = dist;
            best = k;
        }
    }
    std::string prefix = fmt::format("{}", fmt::join(words.begin(), words.begin() + depth, " "));
    if (!prefix.empty())
        prefix += ' ';
    std::string msg = fmt::format("unknown command '{}'", typed);
    if (!best.empty())
        msg += fmt::format("; did you mean '{}{}'?", prefix, best);
    else
        msg += fmt::format("; expected {}", fmt::join(known, ", "));
    msg += " (type 'help' for the list)";
    return fail(msg);
}

/* Finds the command whose keywords start @p words. */
const CommandDef *find_command(const std::vector<std::string> &words, CommandResult *error)
{
    for (size_t depth = 0; depth < 3; ++depth) {
        if (depth >= words.size()) {
            const std::vector<std::string> known = keywords_after(words, depth);
            *error = fail(fmt::format("incomplete command '{}'; expected {}", fmt::join(words, " "),
                                      fmt::join(known, ", ")));
            return nullptr;
        }
        bool any = false;
        for (const CommandDef &d : kCommands) {
            const std::vector<std::string> w = syntax_words(d);
            const size_t k = keyword_count(d);
            if (depth >= k || !std::equal(words.begin(), words.begin() + depth + 1, w.begin()))
                continue;
            if (depth + 1 == k)
                return &d;
            any = true;
        }
        if (!any) {
            *error = unknown(words, depth);
            return nullptr;
        }
    }
    *error = unknown(words, 0);
    return nullptr;
}

/* What may follow @p words, show flows' first @p k of them. Filters come in
 * any order, each keyword followed by its value: while a value is due
 * (@p value_due set), the filter just named (none if that word names
 * none); else the filters not given yet. */
std::vector<const FlowsFilter *> flows_next(const std::vector<std::string> &words, size_t k,
                                            bool &value_due)
{
    const std::span<const std::string> given(words.begin() + static_cast<long>(k), words.end());
    std::vector<const FlowsFilter *> out;
    value_due = given.size() % 2 != 0;
    for (const FlowsFilter &f : kFlowsFilters) {
        const bool named = std::find(given.begin(), given.end(), f.keyword) != given.end();
        if (value_due ? given.back() == f.keyword : !named)
            out.push_back(&f);
    }
    return out;
}

std::string usage(const CommandDef &d)
{
    return fmt::format("usage: {}", d.spec.syntax);
}

CommandResult cmd_help(CommandContext &c)
{
    if (c.args.empty()) {
        std::string out = "commands:\n";
        size_t width = 0;
        for (const CommandDef &d : kCommands)
            width = std::max(width, d.spec.syntax.size());
        for (const CommandDef &d : kCommands)
            out += fmt::format("  {:<{}}  {}\n", d.spec.syntax, width, d.spec.help);
        out += "Tab completes, '?' lists what may follow; docs/console.md has examples.\n";
        return ok(out);
    }
    /* The commands whose keywords begin with the words given, or that the
     * words begin with ("help show flows vip" is show flows' help). */
    std::string out;
    for (const CommandDef &d : kCommands) {
        const std::vector<std::string> w = syntax_words(d);
        const size_t n = std::min(c.args.size(), keyword_count(d));
        if (std::equal(c.args.begin(), c.args.begin() + static_cast<long>(n), w.begin()) &&
            (n == c.args.size() || n == keyword_count(d)))
            out += fmt::format("  {}\n      {}\n", d.spec.syntax, d.spec.help);
    }
    if (out.empty()) {
        CommandResult err;
        find_command(c.args, &err);
        return err.ok ? fail(fmt::format("no help for '{}'", fmt::join(c.args, " "))) : err;
    }
    return ok(out);
}

} // namespace

std::vector<std::string> split_words(std::string_view line)
{
    std::vector<std::string> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() &&
               (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r'))
            ++i;
        if (i >= line.size() || line[i] == '#')
            break;
        const size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\n' &&
               line[i] != '\r')
            ++i;
        out.emplace_back(line.substr(start, i - start));
    }
    return out;
}

namespace {

/* "080": a number, but one written two ways (the node file refuses it too). */
bool leading_zero(std::string_view s) noexcept
{
    return s.size() > 1 && s.front() == '0';
}

} // namespace

std::optional<uint64_t> parse_number(std::string_view s, uint64_t lo, uint64_t hi)
{
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || leading_zero(s) || v < lo || v > hi)
        return std::nullopt;
    return v;
}

std::string bad_number(std::string_view what, std::string_view s, uint64_t lo, uint64_t hi)
{
    const bool digits = !s.empty() && std::all_of(s.begin(), s.end(),
                                                  [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!digits)
        return fmt::format("{} '{}' is not a number ({}..{})", what, s, lo, hi);
    if (leading_zero(s))
        return fmt::format("{} '{}' has a leading zero ({}..{})", what, s, lo, hi);
    return fmt::format("{} '{}' is out of range ({}..{})", what, s, lo, hi);
}

Console::Console(Node &node) : Console(node, Options{}) {}

Console::Console(Node &node, Options options)
    : node_(node), opt_(options), baseline_(std::make_unique<Baseline>()),
      own_capture_(options.capture == nullptr ? std::make_unique<CaptureManager>(node) : nullptr),
      capture_(options.capture != nullptr ? options.capture : own_capture_.get())
{
}

Console::~Console() = default;

std::span<const CommandSpec> Console::commands() noexcept
{
    return kSpecs;
}

CommandResult Console::execute(std::string_view line)
{
    /* A file name or an address with a NUL in it would be cut short where
     * the system reads it, not where the reply says. */
    if (line.find('\0') != std::string_view::npos)
        return fail("a command may not contain a NUL byte");
    const std::vector<std::string> words = split_words(line);
    if (words.empty())
        return ok();
    std::lock_guard lock(mu_);
    try {
        CommandResult err;
        const CommandDef *d = find_command(words, &err);
        if (d == nullptr)
            return err;
        const size_t k = keyword_count(*d);
        const size_t nargs = words.size() - k;
        if (nargs < d->min_args)
            return fail(fmt::format("missing argument; {}", usage(*d)));
        if (nargs > d->max_args)
            return fail(fmt::format("unexpected '{}'; {}", words[k + d->max_args], usage(*d)));
        CommandContext ctx{
            node_,
            opt_,
            *baseline_,
            capture_,
            quit_,
            std::vector<std::string>(words.begin() + static_cast<long>(k), words.end())};
        return d->handler(ctx);
    } catch (const std::exception &e) {
        return fail(fmt::format("{}: {}", words.front(), e.what()));
    }
}

std::vector<std::string> Console::complete(const std::vector<std::string> &words) const
{
    /* help takes a command line: what may follow it is what may follow
     * the command's words. */
    if (!words.empty() && words.front() == "help")
        return complete({words.begin() + 1, words.end()});
    std::vector<std::string> out = keywords_after(words, words.size());
    auto push = [&](std::string s) {
        if (std::find(out.begin(), out.end(), s) == out.end())
            out.push_back(std::move(s));
    };
    for (const CommandDef &d : kCommands) {
        const std::vector<std::string> w = syntax_words(d);
        const size_t k = keyword_count(d);
        if (words.size() < k ||
            !std::equal(words.begin(), words.begin() + static_cast<long>(k), w.begin()))
            continue;
        const size_t pos = words.size();
        if (d.handler == cmd_show_flows) {
            /* The filters not given yet, unless a value is due. */
            bool value_due = false;
            for (const FlowsFilter *f : flows_next(words, k, value_due))
                if (!value_due)
                    push(std::string(f->keyword));
            continue;
        }
        if (pos >= w.size())
            continue;
        std::string pat = w[pos];
        if (pat.front() == '[')
            pat = pat.substr(1, pat.size() - 2);
        if (pat == "<proto>") {
            push("tcp");
            push("udp");
        } else if (pat == "<level>") {
            for (std::string_view l : log_level_names())
                push(std::string(l));
        } else if (pat == "<port-name|drop-reason>") {
            for (const PortConfig &p : node_.config().ports)
                push(p.name);
            for (const DropReasonInfo &r : kDropReasons)
                push(std::string(r.name));
        } else if (pat == "command") {
            for (const std::string &kw : keywords_after({}, 0))
                push(kw);
        } else if (pat.find('<') == std::string::npos) {
            std::replace(pat.begin(), pat.end(), '|', ' ');
            for (std::string &choice : split_words(pat))
                push(std::move(choice));
        }
    }
    return out;
}

std::string Console::hint(const std::vector<std::string> &words) const
{
    if (words.size() >= 2 && words.front() == "help")
        return hint({words.begin() + 1, words.end()});
    std::vector<std::string> hints;
    for (const CommandDef &d : kCommands) {
        const std::vector<std::string> w = syntax_words(d);
        const size_t k = keyword_count(d);
        const size_t pos = words.size();
        if (pos < k || !std::equal(words.begin(), words.begin() + static_cast<long>(k), w.begin()))
            continue;
        if (d.handler == cmd_show_flows) {
            /* Any filter not given yet, or the value of the one just named. */
            bool value_due = false;
            for (const FlowsFilter *f : flows_next(words, k, value_due))
                hints.push_back(value_due ? std::string(f->value)
                                          : fmt::format("[{} {}]", f->keyword, f->value));
            continue;
        }
        if (pos < w.size())
            hints.push_back(w[pos]);
    }
    return fmt::format("{}", fmt::join(hints, " or "));
}

std::string Console::metrics_text() const
{
    return prometheus_text(collect_metrics(node_));
}

} // namespace flowhome
