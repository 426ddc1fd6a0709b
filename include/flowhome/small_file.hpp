/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Reading a small file whole: the node file, the gossip key file.
 *
 * Threading: any thread; blocks on the file system like read(2). Allocates;
 * throws only std::bad_alloc. Failures are reported, never thrown, so that
 * each caller words them for its own file.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace flowhome {

/** What read_small_file() took from a path. */
struct SmallFile {
    enum class Status : uint8_t {
        ok,
        cannot_open, /**< open(2) or fstat(2) failed: see error */
        not_regular, /**< FileKind::regular_only, and it is a FIFO, a directory, a device... */
        cannot_read, /**< read(2) failed: see error */
        too_large,   /**< more than the caller's limit */
    };
    Status status = Status::ok;
    int error = 0;       /**< errno of cannot_open and cannot_read */
    std::string content; /**< the file, when ok; empty otherwise */
    unsigned mode = 0;   /**< its permission bits (st_mode & 07777), when ok */
};

enum class FileKind : uint8_t {
    any,          /**< whatever opens for reading, a pipe included */
    regular_only, /**< refuse anything else before a read could block */
};

/**
 * Reads @p path whole, refusing it past @p max_bytes. With regular_only the
 * file is opened non-blocking and refused unless it is a regular file: a
 * FIFO at the path would otherwise hold the calling thread until someone
 * wrote to it. Reads interrupted by a signal are retried. The read buffer,
 * and the content of a file refused after reading began, are zeroed before
 * they are freed: a key file holds secrets.
 */
SmallFile read_small_file(const std::string &path, size_t max_bytes, FileKind kind);

} // namespace flowhome
