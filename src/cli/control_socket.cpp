/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket, the Prometheus endpoint and the attach client. One
 * thread polls both listening sockets and every attached session together,
 * and runs each whole line a session has sent; an HTTP request is read with
 * a 2 s limit. A reply is written whole, with the same limit: a client that
 * stops reading while its replies fill the socket buffer holds the thread
 * for at most 2 s, and is then hung up on.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "flowhome/cli_server.hpp"

namespace flowhome {
namespace {

constexpr int kPollMs = 100;
constexpr auto kSessionIdle = std::chrono::minutes(10); /* an attached session may idle */
constexpr size_t kMaxSessions = 16;
constexpr size_t kMaxLine = 4096;
constexpr timeval kSendLimit{2, 0}; /* a client must take its reply in this */

/* An accepted socket: a blocked send() returns after kSendLimit (EAGAIN). */
int limit_sends(int fd) noexcept
{
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &kSendLimit, sizeof(kSendLimit));
    return fd;
}

bool write_all(int fd, std::string_view s)
{
    while (!s.empty()) {
        const ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

/* Reads one '\n'-terminated line into @p line from @p buf/fd; false on EOF,
 * error, timeout or an over-long line. */
bool read_line(int fd, std::string &buf, std::string &line, int timeout_ms,
               const std::atomic<bool> *stop)
{
    for (int waited = 0;;) {
        const size_t nl = buf.find('\n');
        if (nl != std::string::npos) {
            line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            return true;
        }
        if (buf.size() > kMaxLine)
            return false;
        pollfd p{fd, POLLIN, 0};
        const int r = poll(&p, 1, kPollMs);
        if (r < 0 && errno != EINTR)
            return false;
        if (stop != nullptr && stop->load())
            return false;
        if (r <= 0) {
            waited += kPollMs;
            if (waited >= timeout_ms)
                return false;
            continue;
        }
        char tmp[1024];
        const ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            return false;
        buf.append(tmp, static_cast<size_t>(n));
    }
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
    if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 || listen(fd, 4) != 0) {
        const int err = errno;
        close(fd);
        throw std::runtime_error(
            fmt::format("cannot listen on control socket {}: {}", path, std::strerror(err)));
    }
    chmod(path.c_str(), 0600); /* the operator only: it can stop the node */
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
        std::vector<pollfd> fds{{unix_fd_, POLLIN, 0}, {http_fd_, POLLIN, 0}};
        for (const Session &s : sessions_)
            fds.push_back({s.fd, POLLIN, 0});
        const int r = poll(fds.data(), fds.size(), kPollMs);
        const auto now = std::chrono::steady_clock::now();
        /* Backwards, so that closing one leaves the others' indices. */
        for (size_t i = sessions_.size(); i-- > 0;) {
            Session &s = sessions_[i];
            bool keep = true;
            if (r > 0 && (fds[2 + i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                s.last = now;
                keep = serve_session(s);
            } else if (now - s.last > kSessionIdle) {
                keep = false;
            }
            if (!keep) {
                close(s.fd);
                sessions_.erase(sessions_.begin() + static_cast<ptrdiff_t>(i));
            }
        }
        if (r > 0 && (fds[0].revents & POLLIN) != 0)
            accept_session(now);
        if (r > 0 && (fds[1].revents & POLLIN) != 0) {
            const int c = limit_sends(accept4(http_fd_, nullptr, nullptr, SOCK_CLOEXEC));
            if (c >= 0) {
                serve_http(c);
                close(c);
            }
        }
    }
    for (const Session &s : sessions_)
        close(s.fd);
    sessions_.clear();
}

void OperatorServer::accept_session(std::chrono::steady_clock::time_point now) noexcept
{
    const int c = limit_sends(accept4(unix_fd_, nullptr, nullptr, SOCK_CLOEXEC));
    if (c < 0)
        return;
    if (sessions_.size() == kMaxSessions) {
        const std::string why = fmt::format("{} sessions are attached already\n", kMaxSessions);
        write_all(c, fmt::format("error {}\n{}", why.size(), why));
        close(c);
        return;
    }
    try {
        sessions_.push_back({c, {}, now});
    } catch (const std::exception &) {
        close(c); /* out of memory: refuse this one, keep serving */
    }
}

/* Runs the whole lines a session has sent; false when it is to be closed:
 * it quit or hung up (a last line without a newline still runs), a reply
 * could not be written, or a line grew past kMaxLine. */
bool OperatorServer::serve_session(Session &s) noexcept
{
    char tmp[4096];
    const ssize_t n = recv(s.fd, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    try {
        if (n == 0) {
            if (!s.buf.empty())
                run_line(s.fd, s.buf);
            return false;
        }
        s.buf.append(tmp, static_cast<size_t>(n));
        for (size_t nl; (nl = s.buf.find('\n')) != std::string::npos;) {
            const std::string line = s.buf.substr(0, nl);
            s.buf.erase(0, nl + 1);
            if (!run_line(s.fd, line))
                return false;
        }
        if (s.buf.size() > kMaxLine) {
            const std::string why = fmt::format("line too long: more than {} bytes\n", kMaxLine);
            write_all(s.fd, fmt::format("error {}\n{}", why.size(), why));
            return false;
        }
        return true;
    } catch (const std::exception &) {
        return false; /* out of memory: drop this session, keep serving */
    }
}

/* One command and its reply; false when the session ends (quit, or the
 * reply could not be written). */
bool OperatorServer::run_line(int fd, const std::string &line) noexcept
{
    try {
        const CommandResult r = console_.execute(line);
        const bool quit = split_words(line) == std::vector<std::string>{"quit"};
        return write_all(fd, fmt::format("{} {}\n", r.ok ? "ok" : "error", r.text.size())) &&
               write_all(fd, r.text) && !quit;
    } catch (const std::exception &) {
        return false; /* out of memory formatting a reply */
    }
}

void OperatorServer::serve_http(int fd) noexcept
{
    try {
        std::string buf;
        std::string request;
        if (!read_line(fd, buf, request, 2000, &stop_))
            return;
        /* The request line is enough; headers are not needed. */
        const bool metrics =
            request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?");
        const std::string body = metrics ? console_.metrics_text() : "not found: try /metrics\n";
        write_all(fd,
                  fmt::format("HTTP/1.0 {}\r\nContent-Type: text/plain; version=0.0.4; "
                              "charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                              metrics ? "200 OK" : "404 Not Found", body.size()));
        write_all(fd, body);
    } catch (const std::exception &) {
        /* drop this request */
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
        if (!write_all(fd, line + "\n") || !read_line(fd, buf, header, 30'000, nullptr)) {
            fmt::print(stderr, "flowhome: the node closed the connection\n");
            rc = 2;
            return false;
        }
        const bool ok = header.starts_with("ok ");
        size_t n = 0;
        try {
            n = std::stoul(header.substr(header.find(' ') + 1));
        } catch (const std::exception &) {
            fmt::print(stderr, "flowhome: malformed reply '{}'\n", header);
            rc = 2;
            return false;
        }
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
