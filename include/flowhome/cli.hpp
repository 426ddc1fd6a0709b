/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The operator's command layer, independent of any terminal: one command
 * line in, {ok or error, text} out. The interactive console (cmdline), the
 * command file, the control socket and the tests all call execute(); the
 * reference of every command is docs/console.md.
 *
 * What runs where: counters are atomics, read on the caller's thread.
 * Anything that iterates the ownership table, looks a flow up or touches the
 * gossip engine or its membership runs on the control lcore through
 * ControlLoop::run_on_control(), bounded by Options::control_timeout (a
 * control lcore that does not answer is an error, never a hang). Settings
 * the workers read (miss policy, draining) are atomics in DatapathShared.
 * Nothing here writes another thread's counters: `clear stats` keeps a
 * baseline in the Console and `show stats` prints the difference; telemetry
 * and Prometheus export the absolute, monotonic values.
 *
 * Threading: execute() may be called from any non-worker thread, from
 * several at once (calls are serialised by a mutex); never from a worker
 * or the control lcore. Errors: execute() never throws; every failure is a
 * CommandResult with ok == false and a message saying what was wrong.
 */
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flowhome {

class Node;
class CaptureManager;

struct CommandResult {
    bool ok = true;
    std::string text; /**< output, or the error message; ends with '\n' unless empty */
};

/** One command of the console's table, as help and completion show it. */
struct CommandSpec {
    std::string_view syntax; /**< e.g. "set miss-policy drop|local|hash" */
    std::string_view help;   /**< one line */
};

class Console {
public:
    struct Options {
        /** Longest wait for the control lcore to run a request. */
        std::chrono::milliseconds control_timeout{2000};
        /** Table entries `show flows` visits in one control-lcore request. */
        uint32_t flows_per_request = 16384;
        /** How long `show flows` walks before it starts no more requests (the
         * one running then may take control_timeout more): the thread that
         * runs it also serves the other sessions and the scrapes. */
        std::chrono::milliseconds flows_walk_limit{5000};
        /** `quit` ends the session (control socket) instead of the node. */
        bool quit_ends_session_only = false;
        /** The node's capture, shared with its other front ends so that
         * each can stop what another started; null: a capture of its own. */
        CaptureManager *capture = nullptr;
    };

    /** @p node must be running (or at least constructed) and outlive the console. */
    explicit Console(Node &node);
    Console(Node &node, Options options);
    ~Console();
    Console(const Console &) = delete;
    Console &operator=(const Console &) = delete;

    /** Parses and runs one line. An empty line or a comment ('#') is ok with no text. */
    CommandResult execute(std::string_view line);

    /** True once `quit` ran. */
    bool quit_requested() const noexcept { return quit_.load(); }

    /** Every command, in the order help lists them. */
    static std::span<const CommandSpec> commands() noexcept;

    /** Words that may come after @p words (completion); includes port and drop-reason names. */
    std::vector<std::string> complete(const std::vector<std::string> &words) const;
    /** What the word after @p words stands for, e.g. "<client-ip>:<port>"; empty if nothing. */
    std::string hint(const std::vector<std::string> &words) const;

    /** Every counter in Prometheus text format (absolute values; docs/console.md). */
    std::string metrics_text() const;

    Node &node() noexcept { return node_; }

    struct Baseline; /* counters at the last `clear stats` (console/show.cpp) */

private:
    friend struct ConsoleAccess;
    Node &node_;
    Options opt_;
    std::mutex mu_;
    std::atomic<bool> quit_{false};
    std::unique_ptr<Baseline> baseline_;
    std::unique_ptr<CaptureManager> own_capture_; /* when Options::capture is null */
    CaptureManager *capture_;
};

/** Splits @p line into words at blanks; a '#' starts a comment. */
std::vector<std::string> split_words(std::string_view line);

} // namespace flowhome
