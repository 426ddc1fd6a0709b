/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * The operator's front ends around the command layer (cli.hpp):
 *  - the interactive console on the main lcore (DPDK cmdline: completion,
 *    '?' help, history), and commands run from a file;
 *  - the control socket (AF_UNIX stream) and the Prometheus endpoint
 *    (HTTP GET /metrics), served by one thread: sessions are multiplexed,
 *    so one that idles holds nobody up;
 *  - the client of the control socket (`flowhome --attach`).
 *
 * Control socket protocol (docs/console.md): the client sends one command
 * per line; for each the server answers a header line "ok <n>\n" or
 * "error <n>\n" followed by exactly n bytes of output. `quit` ends the
 * session, not the node.
 *
 * Threading: run_console()/run_command_file() on the main lcore;
 * OperatorServer runs its own thread (start in the constructor, stop and
 * join in the destructor). Errors: OperatorServer's constructor throws
 * std::runtime_error when it cannot listen; the rest report through return
 * values and their output.
 */
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "flowhome/cli.hpp"
#include "flowhome/types.hpp"

namespace flowhome {

/**
 * Interactive console on the terminal (stdin/stdout) until `quit`, end of
 * input, or *stop becomes true (a signal). Returns 0.
 */
int run_console(Console &console, const volatile int *stop);

/**
 * Runs every line of @p path (echoed after the prompt); returns the number
 * of commands that failed, or -1 when the file cannot be read. Stops at
 * `quit`, and before the next line once *stop is nonzero (a signal).
 */
int run_command_file(Console &console, const std::string &path, const volatile int *stop);

/**
 * Writes @p text to @p f and flushes it. A reader gone (a closed pipe:
 * EPIPE, SIGPIPE being ignored) loses the text, and the node runs on;
 * fmt::print() would throw.
 */
void put_text(std::FILE *f, std::string_view text) noexcept;

class OperatorServer {
public:
    struct Params {
        std::string socket_path;               /**< empty: no control socket */
        std::optional<IpAddr> metrics_address; /**< absent: no HTTP endpoint */
        uint16_t metrics_port = 0;
        CaptureManager *capture = nullptr; /**< the node's, shared with its terminal */
    };
    OperatorServer(Node &node, const Params &params);
    ~OperatorServer();
    OperatorServer(const OperatorServer &) = delete;
    OperatorServer &operator=(const OperatorServer &) = delete;

private:
    using Clock = std::chrono::steady_clock;

    /* One client, of the control socket or of the metrics endpoint: what
     * it sent that is not a whole line yet, and what it has yet to take of
     * a reply. The thread never blocks on a client: a reply waits here. */
    struct Session {
        int fd;
        bool http;
        Clock::time_point opened; /**< accepted: an HTTP request's deadline counts from it */
        Clock::time_point last;   /**< last input: the idle limit counts from it */
        Clock::time_point taken;  /**< the client last took some of @p out */
        std::string in;
        std::string out;
        bool ended = false; /**< hang up once @p out is sent (quit, end of input, answered) */

        /** A whole line waits in @p in: it runs before more is read. */
        bool has_line() const noexcept { return in.find('\n') != std::string::npos; }
    };
    void serve() noexcept;
    void accept_session(int listen_fd, bool http) noexcept;
    void accept_session_fd(int fd, bool http, Clock::time_point now) noexcept;
    bool evict_idlest(Clock::time_point now) noexcept;
    bool serve_session(Session &s, short revents, Clock::time_point now) noexcept;
    bool serve_http(Session &s, short revents, Clock::time_point now) noexcept;
    void run_line(Session &s, const std::string &line);
    void unlink_socket() const noexcept;

    Console console_;
    Params p_;
    int unix_fd_ = -1;
    uint64_t socket_inode_ = 0; /* ours to remove at the end, if still there */
    int http_fd_ = -1;
    std::vector<Session> sessions_; /* the server thread's only */
    /* Out of descriptors or memory, accept() left the connection waiting:
     * the listeners are not polled again before this, or poll() would
     * return at once, again and again. */
    Clock::time_point accept_after_{};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

/**
 * `flowhome --attach SOCKET [command...]`: runs the command given (words
 * joined), or every line of stdin, against a running node. Returns 0 when
 * every command succeeded, 1 when one failed, 2 when the node could not be
 * reached.
 */
int attach_main(const std::string &socket_path, const std::vector<std::string> &command);

} // namespace flowhome
