/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control side of a capture: file, pool, ring and writer thread, and
 * the RCU-safe publish / unpublish of the tap to the workers.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_pcapng is experimental in DPDK 22.11 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <ctime>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pcapng.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "flowhome/capture.hpp"
#include "flowhome/node.hpp"
#include "flowhome/ports.hpp"
#include "../capture_time.hpp"

namespace flowhome {
namespace {

constexpr unsigned kRingSize = 4096; /* copies waiting for the writer */
constexpr unsigned kPoolSize = 8191;
/* Per-lcore cache: without one each copy is an atomic on the pool's ring,
 * shared by the capturing workers. */
constexpr unsigned kPoolCache = 64;
constexpr uint32_t kSnapLen = 2048;
constexpr uint64_t kNsPerSecond = 1'000'000'000;

} // namespace

struct CaptureManager::Running {
    std::string target;
    std::string file;
    uint64_t limit = kCaptureDefaultPackets;
    CaptureTap tap;
    std::atomic<CaptureTap *> *published = nullptr; /* the workers' pointer to the tap */
    rte_pcapng_t *pcapng = nullptr;
    std::thread writer;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> written{0};
    std::atomic<bool> at_limit{false};
    uint64_t write_errors = 0;       /* writer thread only until joined */
    int fd = -1;                     /* the file, which pcapng writes to */
    off_t whole_end = 0;             /* where the last whole block written ends */
    std::atomic<bool> broken{false}; /* a write failed: nothing more is written */
    /* The wall clock at a TSC reading, taken as the capture starts: copies
     * carry their TSC reading (capture_time.hpp), timed from these. */
    uint64_t base_tsc = 0;
    uint64_t base_ns = 0;
    uint64_t tsc_hz = 1;

    void start_clock() noexcept
    {
        const uint64_t before = rte_get_tsc_cycles();
        timespec ts{};
        clock_gettime(CLOCK_REALTIME, &ts);
        base_tsc = before + (rte_get_tsc_cycles() - before) / 2;
        base_ns =
            static_cast<uint64_t>(ts.tv_sec) * kNsPerSecond + static_cast<uint64_t>(ts.tv_nsec);
        tsc_hz = rte_get_tsc_hz();
    }

    /* Nanoseconds since the epoch at TSC reading @p tsc (a worker's, which
     * may run a little behind this thread's: before the base, it counts
     * back). In whole seconds and the rest, so as not to overflow. */
    uint64_t time_of(uint64_t tsc) const noexcept
    {
        auto ns = [this](uint64_t cycles) {
            return cycles / tsc_hz * kNsPerSecond + cycles % tsc_hz * kNsPerSecond / tsc_hz;
        };
        return tsc >= base_tsc ? base_ns + ns(tsc - base_tsc) : base_ns - ns(base_tsc - tsc);
    }

    void write_loop()
    {
        rte_mbuf *pkts[64];
        for (;;) {
            /* Read the flag before draining: once it is set no worker holds
             * the tap, so an empty ring after it is the end. */
            const bool stopping = stop.load(std::memory_order_acquire);
            const unsigned n = rte_ring_dequeue_burst(tap.ring, reinterpret_cast<void **>(pkts),
                                                      RTE_DIM(pkts), nullptr);
            if (n != 0) {
                write(pkts, n);
                rte_pktmbuf_free_bulk(pkts, n);
                continue;
            }
            if (stopping)
                return;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    /* The workers stop copying at their next poll; the pool and the ring
     * stay until stop() has waited for them. */
    void unpublish() noexcept
    {
        CaptureTap *ours = &tap;
        published->compare_exchange_strong(ours, nullptr, std::memory_order_acq_rel);
    }

    /* Writes up to the limit; what comes after it is freed unwritten. */
    void write(rte_mbuf **pkts, unsigned n)
    {
        const uint64_t done = written.load(std::memory_order_relaxed);
        const auto take = static_cast<uint16_t>(std::min<uint64_t>(n, limit - done));
        if (take == 0)
            return;
        if (broken.load(std::memory_order_relaxed)) {
            write_errors += take; /* copied before the workers saw it stop */
            return;
        }
        size_t bytes = 0;
        for (uint16_t i = 0; i < take; ++i) {
            set_capture_time(pkts[i], time_of(capture_time(pkts[i])));
            bytes += rte_pktmbuf_pkt_len(pkts[i]); /* the block, whole */
        }
        const ssize_t put = rte_pcapng_write_packets(pcapng, pkts, take);
        uint16_t whole = take;
        if (put != static_cast<ssize_t>(bytes)) {
            /* A failed or short write (the disk full, a file size limit):
             * the blocks it wrote whole stay, the one it cut short goes
             * (it would leave every block after it unreadable), and the
             * capture writes no more. */
            whole = 0;
            off_t end = whole_end;
            while (put > 0 && whole < take &&
                   end + static_cast<off_t>(rte_pktmbuf_pkt_len(pkts[whole])) <=
                       whole_end + static_cast<off_t>(put))
                end += static_cast<off_t>(rte_pktmbuf_pkt_len(pkts[whole++]));
            if (put > 0 && ftruncate(fd, end) == 0)
                lseek(fd, end, SEEK_SET);
            whole_end = end;
            write_errors += take - whole;
            broken.store(true, std::memory_order_release);
            unpublish();
        } else {
            whole_end += static_cast<off_t>(bytes);
        }
        written.store(done + whole, std::memory_order_relaxed);
        if (done + whole == limit) {
            unpublish();
            at_limit.store(true, std::memory_order_release);
        }
    }
};

namespace {

/*
 * The capture file, which must be a regular file. Opened without blocking:
 * a FIFO with no reader would otherwise hold the console (and with it the
 * node's shutdown) until a reader came; and its writes could block the
 * writer thread, and then `capture stop`, behind a reader that stalls.
 * -1 with errno set; EINVAL for a FIFO, device or socket that did open.
 */
int open_capture_file(const std::string &file)
{
    const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0640);
    if (fd < 0)
        return -1;
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

} // namespace

CaptureManager::CaptureManager(Node &node) : node_(node) {}

CaptureManager::~CaptureManager()
{
    if (run_)
        stop("");
}

std::string CaptureManager::start(const std::string &target, const std::string &file,
                                  uint64_t max_packets)
{
    std::lock_guard lock(mu_);
    if (max_packets == 0 || max_packets > kCaptureMaxPackets)
        throw std::runtime_error(fmt::format("packet limit {} is out of range (1..{})", max_packets,
                                             kCaptureMaxPackets));
    if (run_)
        throw std::runtime_error(fmt::format("a capture of '{}' into {} is running; stop it first",
                                             run_->target, run_->file));
    if (node_.shared().capture.load() != nullptr)
        throw std::runtime_error("a capture started from another console is running");
    auto r = std::make_unique<Running>();
    r->target = target;
    r->file = file;
    r->limit = max_packets;
    r->published = &node_.shared().capture;
    r->tap.snaplen = kSnapLen;
    const NodeConfig &cfg = node_.config();
    bool found = false;
    for (const PortConfig &p : cfg.ports) {
        if (p.name == target) {
            r->tap.kind = CaptureTap::Kind::port;
            r->tap.port = p.role == PortRole::wire ? node_.ports().wire : node_.ports().local;
            found = true;
        }
    }
    for (const DropReasonInfo &d : kDropReasons) {
        if (!found && d.name == target) {
            r->tap.kind = CaptureTap::Kind::drop;
            r->tap.reason = d.reason;
            found = true;
        }
    }
    if (!found) {
        std::vector<std::string_view> ports;
        for (const PortConfig &p : cfg.ports)
            ports.push_back(p.name);
        throw std::runtime_error(fmt::format(
            "unknown capture target '{}': expected a port ({}) or a drop reason (show stats drops "
            "lists them)",
            target, fmt::join(ports, ", ")));
    }

    static std::atomic<unsigned> serial{0};
    const unsigned id = serial.fetch_add(1);
    const std::string pool_name = fmt::format("fh_cap_p{}", id);
    const std::string ring_name = fmt::format("fh_cap_r{}", id);
    r->tap.pool =
        create_packet_pool(pool_name.c_str(), kPoolSize, kPoolCache,
                           static_cast<uint16_t>(rte_pcapng_mbuf_size(kSnapLen)), SOCKET_ID_ANY);
    if (r->tap.pool == nullptr)
        throw std::runtime_error(
            fmt::format("cannot create the capture pool: {}", rte_strerror(rte_errno)));
    r->tap.ring = rte_ring_create(ring_name.c_str(), kRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
    auto undo = [&] {
        rte_ring_free(r->tap.ring);
        rte_mempool_free(r->tap.pool);
    };
    if (r->tap.ring == nullptr) {
        undo();
        throw std::runtime_error(
            fmt::format("cannot create the capture ring: {}", rte_strerror(rte_errno)));
    }
    const int fd = open_capture_file(file);
    if (fd < 0) {
        const int err = errno;
        undo();
        throw std::runtime_error(
            err == ENXIO || err == EISDIR || err == EINVAL
                ? fmt::format("cannot capture into {}: not a regular file", file)
                : fmt::format("cannot open {}: {}", file, std::strerror(err)));
    }
    r->pcapng = rte_pcapng_fdopen(fd, nullptr, nullptr, "flowhome",
                                  fmt::format("capture of {}", target).c_str());
    if (r->pcapng == nullptr) {
        close(fd);
        undo();
        throw std::runtime_error(
            fmt::format("cannot start a pcapng file in {}: {}", file, rte_strerror(rte_errno)));
    }
    r->fd = fd;
    r->whole_end = lseek(fd, 0, SEEK_CUR); /* after the section and interface blocks */
    r->start_clock();
    CaptureTap *expected = nullptr;
    if (!node_.shared().capture.compare_exchange_strong(expected, &r->tap,
                                                        std::memory_order_acq_rel)) {
        rte_pcapng_close(r->pcapng);
        undo();
        throw std::runtime_error("a capture started from another console is running");
    }
    Running *raw = r.get();
    r->writer = std::thread([raw] { raw->write_loop(); });
    run_ = std::move(r);
    return fmt::format("capturing {} {} into {} (snap length {} bytes, at most {} packets)\n",
                       run_->tap.kind == CaptureTap::Kind::port ? "port" : "drop reason", target,
                       file, kSnapLen, max_packets);
}

std::string CaptureManager::stop(const std::string &target)
{
    std::lock_guard lock(mu_);
    if (!run_)
        throw std::runtime_error("no capture is running");
    if (!target.empty() && target != run_->target)
        throw std::runtime_error(fmt::format(
            "no capture of '{}' is running (the capture is of '{}')", target, run_->target));
    CaptureTap *ours = &run_->tap; /* unless the writer has, at the limit */
    node_.shared().capture.compare_exchange_strong(ours, nullptr, std::memory_order_acq_rel);
    /* Workers load the tap once per poll and pass a quiescent state after
     * it; once every worker has, none can still offer to this tap. */
    if (node_.shared().qsbr != nullptr)
        rte_rcu_qsbr_synchronize(node_.shared().qsbr, RTE_QSBR_THRID_INVALID);
    run_->stop.store(true, std::memory_order_release);
    run_->writer.join();
    rte_pcapng_close(run_->pcapng); /* closes the file descriptor */
    rte_ring_free(run_->tap.ring);
    rte_mempool_free(run_->tap.pool);
    std::string out = fmt::format(
        "capture of {} stopped: {} packets written to {}, {} lost{}{}\n", run_->target,
        run_->written.load(), run_->file, run_->tap.lost.load(),
        run_->broken.load()
            ? fmt::format(", {} failed to write (a write failed: the file ends at the last packet "
                          "written whole, and the workers stopped copying)",
                          run_->write_errors)
            : "",
        run_->at_limit.load() ? fmt::format(" (its limit of {} packets reached)", run_->limit)
                              : "");
    run_.reset();
    return out;
}

std::string CaptureManager::status() const
{
    std::lock_guard lock(mu_);
    if (!run_)
        return "none";
    if (run_->at_limit.load(std::memory_order_acquire))
        return fmt::format("{} into {}: {} packets written, its limit; capture stop closes the "
                           "file",
                           run_->target, run_->file, run_->written.load());
    if (run_->broken.load(std::memory_order_acquire))
        return fmt::format("{} into {}: {} packets written, then a write failed; capture stop "
                           "closes the file",
                           run_->target, run_->file, run_->written.load());
    return fmt::format("{} into {}: {} captured, {} written of at most {}, {} lost", run_->target,
                       run_->file, run_->tap.captured.load(), run_->written.load(), run_->limit,
                       run_->tap.lost.load());
}

} // namespace flowhome
