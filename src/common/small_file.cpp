/* SPDX-License-Identifier: BSD-3-Clause */
/* read_small_file(): see flowhome/small_file.hpp. */
#include "flowhome/small_file.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace flowhome {
namespace {

/* Closes the descriptor on every way out, keeping errno for the caller. */
class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd()
    {
        if (fd_ >= 0) {
            const int saved = errno;
            ::close(fd_);
            errno = saved;
        }
    }
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

SmallFile failed(SmallFile::Status status, int error = 0)
{
    SmallFile f;
    f.status = status;
    f.error = error;
    return f;
}

/* Zeroes @p s before it is dropped; explicit_bzero() is a store the
 * compiler may not remove as dead. */
void wipe(std::string &s) noexcept
{
    ::explicit_bzero(s.data(), s.size());
    s.clear();
}

} // namespace

SmallFile read_small_file(const std::string &path, size_t max_bytes, FileKind kind)
{
    const bool regular_only = kind == FileKind::regular_only;
    const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | (regular_only ? O_NONBLOCK : 0)));
    if (fd.get() < 0)
        return failed(SmallFile::Status::cannot_open, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return failed(SmallFile::Status::cannot_open, errno);
    if (regular_only) {
        if (!S_ISREG(st.st_mode))
            return failed(SmallFile::Status::not_regular);
        /* A regular file: reads block as they should again. */
        if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK) != 0)
            return failed(SmallFile::Status::cannot_open, errno);
    }

    SmallFile f;
    std::array<char, 16384> buf;
    /* Room for the most a read can bring past the limit: the content never
     * moves, so no copy of it is freed unwiped. */
    f.content.reserve(max_bytes + buf.size());
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            f.status = SmallFile::Status::cannot_read;
            f.error = errno;
            break;
        }
        if (n == 0)
            break;
        f.content.append(buf.data(), static_cast<size_t>(n));
        if (f.content.size() > max_bytes) {
            f.status = SmallFile::Status::too_large;
            break;
        }
    }
    ::explicit_bzero(buf.data(), buf.size());
    if (f.status != SmallFile::Status::ok)
        wipe(f.content);
    else
        f.mode = st.st_mode & 07777;
    return f;
}

} // namespace flowhome
