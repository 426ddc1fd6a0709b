/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket, the Prometheus endpoint and the attach client. One
 * thread polls both listening sockets and every client together, and never
 * blocks on a client: it runs a control session's whole lines one at a
 * time, each once the last one's reply has been taken, and answers an HTTP
 * request once its request line is in. A reply waits in its session until
 * the client takes it; a client that takes none of it for 2 s is hung up
 * on, as is a scrape that has not sent its request line 2 s after it
 * connected. Slow clients cost the others nothing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "control_protocol.hpp"
#include "flowhome/cli_server.hpp"

namespace flowhome {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kPollMs = 100;
constexpr auto kSessionIdle = std::chrono::minutes(10); /* an attached session may idle */
constexpr size_t kMaxSessions = 16;
/* With every session taken, one idle this long makes room for a new one. */
constexpr auto kEvictableIdle = std::chrono::seconds(10);
/* Scrapes in progress at once. */
constexpr size_t kMaxHttp = 16;
constexpr Clock::duration kSendLimit = std::chrono::seconds(2); /* to take some of a reply */
constexpr Clock::duration kHttpRequestLimit = std::chrono::seconds(2);
constexpr Clock::duration kReplyLimit = std::chrono::seconds(30); /* the attach client's wait */

/*
 * Writes @p s whole. Waiting for the peer to make room takes from @p budget
 * (what it waited is subtracted); once that is spent the write fails, so a
 * peer that stops reading holds the caller no longer than its budget.
 */
bool write_all(int fd, std::string_view s, Clock::duration &budget)
{
    while (!s.empty()) {
        const ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            s.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return false;
        const auto left = std::chrono::duration_cast<milliseconds>(budget).count();
        if (left <= 0)
            return false;
        pollfd p{fd, POLLOUT, 0};
        const Clock::time_point t0 = Clock::now();
        const int r = poll(&p, 1, static_cast<int>(left));
        budget -= Clock::now() - t0;
        if (r < 0 && errno != EINTR)
            return false;
    }
    return true;
}

enum class ReadResult { line, too_long, closed, timeout };

/* Reads one '\n'-terminated line of at most kMaxControlLine bytes into
 * @p line from @p buf/fd by @p deadline. */
ReadResult read_line(int fd, std::string &buf, std::string &line, Clock::time_point deadline)
{
    for (;;) {
        const LineTake took = take_line(buf, line);
        if (took == LineTake::line)
            return ReadResult::line;
        if (took == LineTake::too_long)
            return ReadResult::too_long;
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0)
            return ReadResult::timeout;
        pollfd p{fd, POLLIN, 0};
        const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, kPollMs)));
        if (r < 0 && errno != EINTR)
            return ReadResult::closed;
        if (r <= 0)
            continue;
        char tmp[1024];
        const ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            return ReadResult::closed;
        buf.append(tmp, static_cast<size_t>(n));
    }
}

std::string reply(bool ok, std::string_view text)
{
    return framed_reply(ok ? ReplyKind::ok : ReplyKind::error, text);
}

/*
 * Closes a client's socket. What it sent that was never read (the headers
 * after a scrape's request line, say) is read first: closing a socket with
 * unread input resets the connection, and the client may lose the reply
 * still on its way.
 */
void hang_up(int fd) noexcept
{
    char tmp[4096];
    for (int i = 0; i < 16 && recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT) > 0; ++i) {
    }
    close(fd);
}

/* Tells a control client why it is being refused or closed, in a reply of
 * its own kind (`closed N`: no command of its was run or cut short, and a
 * client can tell that from a command that failed; short, so the socket
 * buffer takes it), then hangs up. */
void refuse(int fd, std::string_view why)
{
    const std::string r = framed_reply(ReplyKind::closed, why);
    [[maybe_unused]] const ssize_t n = send(fd, r.data(), r.size(), MSG_NOSIGNAL);
    hang_up(fd);
}

/* Sends what the client will take of @p out now, without waiting; false on
 * an error (the client is gone). @p taken is when it last took some. */
bool flush(int fd, std::string &out, Clock::time_point &taken, Clock::time_point now)
{
    while (!out.empty()) {
        const ssize_t n = send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            out.erase(0, static_cast<size_t>(n));
            taken = now;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
    }
    return true;
}

/*
 * Clears the way for our socket at @p addr: a stale socket of an earlier run
 * is removed; a live one (another node answers on it) or anything that is
 * not a socket is refused, never deleted.
 */
void take_socket_path(const std::string &path, const sockaddr_un &addr)
{
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0)
        return; /* nothing there; bind() reports any other problem */
    if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error(
            fmt::format("control socket {}: the path exists and is not a socket; remove it or set "
                        "console.socket",
                        path));
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 && connect(probe, reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) == 0;
    if (probe >= 0)
        close(probe);
    if (live)
        throw std::runtime_error(fmt::format(
            "control socket {} is in use: a running node answers on it; give this one its own "
            "(console.socket, or another --file-prefix)",
            path));
    unlink(path.c_str()); /* a stale socket of an earlier run */
}

int listen_unix(const std::string &path, uint64_t &inode)
{
    const auto slash = path.rfind('/');
    if (slash != std::string::npos && slash != 0)
        mkdir(path.substr(0, slash).c_str(), 0755); /* /var/run/flowhome; may exist */
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path))
        throw std::runtime_error(fmt::format("control socket path too long: {}", path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error(fmt::format("control socket: {}", std::strerror(errno)));
    try {
        take_socket_path(path, addr);
    } catch (...) {
        close(fd);
        throw;
    }
    /* The operator only: it can stop the node. Restricted before listen():
     * until then a connect() is refused, so nobody gets in while bind()'s
     * mode (the umask's) still applies. */
    if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 ||
        chmod(path.c_str(), 0600) != 0 || listen(fd, 4) != 0) {
        const int err = errno;
        close(fd);
        throw std::runtime_error(
            fmt::format("cannot listen on control socket {}: {}", path, std::strerror(err)));
    }
    struct stat st {};
    inode = stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
    return fd;
}

int listen_tcp(const IpAddr &a, uint16_t port)
{
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error(fmt::format("metrics endpoint: {}", std::strerror(errno)));
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, a.bytes.data(), 4);
    if (bind(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) != 0 || listen(fd, 8) != 0) {
        const int err = errno;
        close(fd);
        throw std::runtime_error(fmt::format("cannot listen on metrics endpoint {}:{}: {}",
                                             a.to_string(), port, std::strerror(err)));
    }
    return fd;
}

} // namespace

OperatorServer::OperatorServer(Node &node, const Params &params)
    : console_(node, Console::Options{.quit_ends_session_only = true, .capture = params.capture}),
      p_(params)
{
    if (!p_.socket_path.empty())
        unix_fd_ = listen_unix(p_.socket_path, socket_inode_);
    try {
        if (p_.metrics_address)
            http_fd_ = listen_tcp(*p_.metrics_address, p_.metrics_port);
    } catch (...) {
        if (unix_fd_ >= 0) {
            close(unix_fd_);
            unlink_socket();
        }
        throw;
    }
    thread_ = std::thread([this] { serve(); });
}

OperatorServer::~OperatorServer()
{
    stop_.store(true);
    if (thread_.joinable())
        thread_.join();
    if (unix_fd_ >= 0) {
        close(unix_fd_);
        unlink_socket();
    }
    if (http_fd_ >= 0)
        close(http_fd_);
}

void OperatorServer::unlink_socket() const noexcept
{
    /* Only our own: another node may have taken the path over since. */
    struct stat st {};
    if (lstat(p_.socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_ino == socket_inode_)
        unlink(p_.socket_path.c_str());
}

void OperatorServer::serve() noexcept
{
    while (!stop_.load()) {
        const short listen = Clock::now() >= accept_after_ ? POLLIN : 0;
        std::vector<pollfd> fds{{unix_fd_, listen, 0}, {http_fd_, listen, 0}};
        /* A session runs one line a pass (below), and reads no more while
         * it holds a whole line: the socket holds the rest back. One with
         * a line to run does not wait for the poll's timeout. */
        bool line_waiting = false;
        for (const Session &s : sessions_) {
            const short wanted = !s.out.empty() ? POLLOUT : s.ended || s.has_line() ? 0 : POLLIN;
            fds.push_back({s.fd, wanted, 0});
            line_waiting = line_waiting || (s.out.empty() && s.has_line());
        }
        const int r = poll(fds.data(), fds.size(), line_waiting ? 0 : kPollMs);
        /* The limits count to the poll: a session that waited behind
         * another's slow command is not held to account for the wait. */
        const Clock::time_point now = Clock::now();
        /* Every session, ready or not: one may have lines left to run, or
         * a limit to reach. Backwards, so that closing one leaves the
         * others' indices. */
        for (size_t i = sessions_.size(); i-- > 0 && !stop_.load();) {
            Session &s = sessions_[i];
            const short revents = r > 0 ? fds[2 + i].revents : 0;
            const bool keep = s.http ? serve_http(s, revents, now) : serve_session(s, revents, now);
            if (!keep) {
                hang_up(s.fd);
                sessions_.erase(sessions_.begin() + static_cast<ptrdiff_t>(i));
            }
        }
        if (r > 0 && (fds[0].revents & POLLIN) != 0)
            accept_session(unix_fd_, false);
        if (r > 0 && (fds[1].revents & POLLIN) != 0)
            accept_session(http_fd_, true);
    }
    for (const Session &s : sessions_)
        close(s.fd);
    sessions_.clear();
}

void OperatorServer::accept_session(int listen_fd, bool http) noexcept
{
    const int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    const Clock::time_point now = Clock::now();
    if (c < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            accept_after_ = now + std::chrono::milliseconds(kPollMs);
        return;
    }
    const auto open = static_cast<size_t>(std::count_if(
        sessions_.begin(), sessions_.end(), [http](const Session &s) { return s.http == http; }));
    if (!http && open == kMaxSessions && evict_idlest(now))
        return accept_session_fd(c, http, now);
    if (open == (http ? kMaxHttp : kMaxSessions)) {
        /* A scraper retries; an operator is told why. */
        if (http)
            close(c);
        else
            refuse(c, fmt::format("{} sessions are attached already\n", kMaxSessions));
        return;
    }
    accept_session_fd(c, http, now);
}

void OperatorServer::accept_session_fd(int c, bool http, Clock::time_point now) noexcept
{
    try {
        sessions_.push_back(
            Session{.fd = c, .http = http, .opened = now, .last = now, .taken = now});
    } catch (const std::exception &) {
        close(c); /* out of memory: refuse this one, keep serving */
    }
}

/* Closes the control session idle longest, if it has idled kEvictableIdle
 * with nothing to run (half a line is nothing) or to send: sixteen
 * forgotten sessions would otherwise lock every operator out for
 * kSessionIdle. */
bool OperatorServer::evict_idlest(Clock::time_point now) noexcept
{
    /* Its last input, or its last reply taken: a long run of lines sent at
     * once ends well after the input did. */
    const auto idle_since = [](const Session &s) { return std::max(s.last, s.taken); };
    auto idlest = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
        if (!it->http && !it->ended && !it->has_line() && it->out.empty() &&
            now - idle_since(*it) >= kEvictableIdle &&
            (idlest == sessions_.end() || idle_since(*it) < idle_since(*idlest)))
            idlest = it;
    if (idlest == sessions_.end())
        return false;
    refuse(idlest->fd, fmt::format("closed: {} sessions were attached, and this one had been "
                                   "idle longest\n",
                                   kMaxSessions));
    sessions_.erase(idlest);
    return true;
}

/*
 * A control session's turn; false when it is to be closed: it quit or its
 * input ended (the last line, even without its newline, runs first), it
 * took none of a reply for kSendLimit, a line grew past kMaxControlLine, or it
 * idled past kSessionIdle.
 */
bool OperatorServer::serve_session(Session &s, short revents, Clock::time_point now) noexcept
{
    try {
        if (!s.out.empty()) {
            if ((revents & (POLLOUT | POLLERR | POLLHUP)) != 0 && !flush(s.fd, s.out, s.taken, now))
                return false;
            if (!s.out.empty())
                return now - s.taken < kSendLimit;
        }
        if (!s.ended && !s.has_line() && (revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            char tmp[4096];
            const ssize_t n = recv(s.fd, tmp, sizeof(tmp), 0);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return false;
            if (n == 0) {
                if (!s.in.empty() && s.in.back() != '\n')
                    s.in += '\n'; /* a last line without its newline still runs */
                s.ended = true;
            } else if (n > 0) {
                s.in.append(tmp, static_cast<size_t>(n));
                s.last = now;
            }
        }
        /* One line a pass, once the client has taken the reply before it:
         * one that sends many and reads none has one reply waiting here,
         * and the rest of its lines unread; one that sends many slow
         * commands holds up the other sessions for one of them at a time.
         * A line longer than kMaxControlLine is refused, whether or not its
         * newline has arrived. */
        LineTake took = LineTake::partial;
        if (std::string line; s.out.empty() && (took = take_line(s.in, line)) == LineTake::line) {
            run_line(s, line);
            if (split_words(line) == std::vector<std::string>{"quit"}) {
                s.ended = true;
                s.in.clear();
            }
            if (!flush(s.fd, s.out, s.taken, Clock::now()))
                return false;
        }
        if (s.out.empty() && took == LineTake::too_long) {
            s.out =
                reply(false, fmt::format("line too long: more than {} bytes\n", kMaxControlLine));
            s.ended = true;
            s.in.clear();
            s.taken = now;
            if (!flush(s.fd, s.out, s.taken, now))
                return false;
        }
        if (!s.out.empty())
            return true; /* the client has kSendLimit to take some */
        if (s.has_line())
            return true; /* its next line runs in the next pass */
        return !s.ended && now - s.last <= kSessionIdle;
    } catch (const std::exception &) {
        return false; /* out of memory: drop this session, keep serving */
    }
}

/* One command: its reply is queued for the client. */
void OperatorServer::run_line(Session &s, const std::string &line)
{
    const CommandResult r = console_.execute(line);
    /* The reply's time to be taken starts once it exists: the command may
     * have taken seconds. */
    if (s.out.empty())
        s.taken = Clock::now();
    s.out += reply(r.ok, r.text);
}

/* A scrape's turn: takes what it sent and, once its request line is in,
 * queues the answer; false when it is to be closed (answered and sent, too
 * slow to send its request or to take the answer, or gone). */
bool OperatorServer::serve_http(Session &s, short revents, Clock::time_point now) noexcept
{
    try {
        if (!s.out.empty()) {
            if ((revents & (POLLOUT | POLLERR | POLLHUP)) != 0 && !flush(s.fd, s.out, s.taken, now))
                return false;
            return !s.out.empty() && now - s.taken < kSendLimit;
        }
        const bool in_time = now - s.opened < kHttpRequestLimit;
        if ((revents & (POLLIN | POLLERR | POLLHUP)) == 0)
            return in_time;
        char tmp[1024];
        const ssize_t n = recv(s.fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && in_time;
        s.in.append(tmp, static_cast<size_t>(n));
        std::string request;
        const LineTake took = take_line(s.in, request);
        if (took != LineTake::line)
            return took == LineTake::partial && in_time;
        /* The request line is enough; headers are not needed. */
        const bool metrics = is_metrics_request(request);
        const std::string body = metrics ? console_.metrics_text() : "not found: try /metrics\n";
        s.out = fmt::format("HTTP/1.0 {}\r\nContent-Type: text/plain; version=0.0.4; "
                            "charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                            metrics ? "200 OK" : "404 Not Found", body.size(), body);
        s.taken = now;
        return flush(s.fd, s.out, s.taken, now) && !s.out.empty();
    } catch (const std::exception &) {
        return false; /* out of memory: drop this request */
    }
}

int attach_main(const std::string &socket_path, const std::vector<std::string> &command)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof(addr.sun_path)) {
        fmt::print(stderr, "flowhome: socket path too long: {}\n", socket_path);
        return 2;
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
        fmt::print(stderr, "flowhome: cannot connect to {}: {}\n", socket_path,
                   std::strerror(errno));
        if (fd >= 0)
            close(fd);
        return 2;
    }
    int rc = 0;
    std::string buf;
    auto run = [&](const std::string &line) {
        if (split_words(line).empty())
            return true;
        std::string header;
        /* Read even when the write failed: a node that refused the session
         * said why before it closed. */
        Clock::duration budget = kReplyLimit;
        write_all(fd, line + "\n", budget);
        switch (read_line(fd, buf, header, Clock::now() + kReplyLimit)) {
        case ReadResult::line:
            break;
        case ReadResult::too_long:
            fmt::print(stderr, "flowhome: malformed reply (a header line of more than {} bytes)\n",
                       kMaxControlLine);
            rc = 2;
            return false;
        case ReadResult::closed:
            fmt::print(stderr, "flowhome: the node closed the connection\n");
            rc = 2;
            return false;
        case ReadResult::timeout:
            fmt::print(stderr, "flowhome: no reply from the node within {} s\n",
                       std::chrono::duration_cast<std::chrono::seconds>(kReplyLimit).count());
            rc = 2;
            return false;
        }
        const std::optional<ReplyHeader> h = parse_reply_header(header);
        if (!h) {
            fmt::print(stderr, "flowhome: malformed reply '{}'\n", header);
            rc = 2;
            return false;
        }
        const bool ok = h->kind == ReplyKind::ok;
        /* The node closes the session without running the command (the
         * session limit): it could not be reached, as far as the caller is
         * concerned. */
        const bool closed = h->kind == ReplyKind::closed;
        const size_t n = h->length;
        while (buf.size() < n) {
            char tmp[4096];
            const ssize_t got = recv(fd, tmp, sizeof(tmp), 0);
            if (got <= 0) {
                rc = 2;
                return false;
            }
            buf.append(tmp, static_cast<size_t>(got));
        }
        std::fwrite(buf.data(), 1, n, ok ? stdout : stderr);
        std::fflush(ok ? stdout : stderr);
        buf.erase(0, n);
        if (closed) {
            rc = 2;
            return false;
        }
        if (!ok && rc == 0)
            rc = 1;
        return split_words(line) != std::vector<std::string>{"quit"};
    };
    if (!command.empty()) {
        run(fmt::format("{}", fmt::join(command, " ")));
    } else {
        std::string line;
        while (std::getline(std::cin, line) && run(line)) {
        }
    }
    close(fd);
    return rc;
}

} // namespace flowhome
