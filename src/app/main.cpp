/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flowhome: run one node of a connection-steering fleet.
 *
 *   flowhome -c FILE [--check] [-i] [--cmd-file FILE] [-- EAL-ARGS...]
 *   flowhome --attach SOCKET [COMMAND...]
 */
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <atomic>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "flowhome/capture.hpp"
#include "flowhome/cli.hpp"
#include "flowhome/cli_server.hpp"
#include "flowhome/config.hpp"
#include "flowhome/eal.hpp"
#include "flowhome/eal_options.hpp"
#include "flowhome/metrics.hpp"
#include "flowhome/node.hpp"

namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_report = 0;

void on_signal(int sig)
{
    /* A hang-up after a stop began (systemd sends SIGHUP after SIGTERM)
     * is no operator's second signal. */
    if (sig == SIGHUP && g_signal != 0)
        return;
    if (g_signal != 0) {
        /* A second signal: the operator does not want to wait for the
         * orderly stop the first began (DPDK still starting on a slow or
         * stuck device probe, or a stop that hangs): end at once, with the
         * signal's own status. */
        std::signal(sig, SIG_DFL);
        std::raise(sig);
    }
    g_signal = sig;
}

void on_report(int)
{
    g_report = 1;
}

void usage(FILE *out, const char *prog)
{
    fmt::print(out,
               "usage: {0} -c FILE [--check] [-i] [--cmd-file FILE] [-- EAL-ARGS...]\n"
               "       {0} --attach SOCKET [COMMAND...]\n"
               "\n"
               "  -c, --config FILE     node configuration (YAML; see docs/configuration.md)\n"
               "      --check           validate the configuration and exit\n"
               "  -i, --interactive     run the node with a console on this terminal\n"
               "      --cmd-file FILE   run the console commands in FILE, then exit (or, with\n"
               "                        -i, continue interactively); non-zero exit status\n"
               "                        when one fails\n"
               "      --attach SOCKET   run COMMAND (or each line of stdin) on a running node\n"
               "                        through its control socket (docs/console.md)\n"
               "  -h, --help            this text\n"
               "  -V, --version         print the version\n"
               "\n"
               "Arguments after -- are passed to the DPDK EAL after those the\n"
               "configuration implies. SIGUSR1 prints every counter; SIGINT, SIGTERM or SIGHUP\n"
               "stops the node and prints them.\n",
               prog);
}

/* The control socket's path: the configured one, or one named after the
 * EAL file prefix the EAL took (its runtime folder is named after it, in
 * whatever form the command line gave it). */
std::string socket_path(const flowhome::NodeConfig &cfg)
{
    if (cfg.console.socket == "off")
        return {};
    if (!cfg.console.socket.empty())
        return cfg.console.socket;
    const std::string runtime = rte_eal_get_runtime_dir();
    return fmt::format("/var/run/flowhome/{}.sock", runtime.substr(runtime.rfind('/') + 1));
}

/*
 * rte_eal_cleanup() leaves the runtime folder (/var/run/dpdk/<prefix>)
 * behind, and the telemetry socket in it until exit (DPDK removes it in an
 * atexit() handler of its own). Registered before the EAL starts, this
 * handler runs after DPDK's: without shared configuration (--no-shconf)
 * the folder is empty by then and goes; otherwise it holds the primary
 * process's files, which DPDK keeps, and rmdir() leaves it.
 */
char g_runtime_dir[PATH_MAX];

/*
 * Without shared configuration (--no-shconf, which huge_pages: false
 * implies) the EAL locks nothing: a second process given the same file
 * prefix would start, speak for the same node in the fleet, and remove the
 * first one's folder when it ends. The lock is on the runtime folder and
 * lasts as long as the process. False when another process holds it; true
 * when this one does, or the folder cannot be opened (nothing to lock).
 * With shared configuration the EAL refuses a second primary itself, and
 * takes this same lock, blocking, at the end of every process's start-up:
 * holding it there would hang DPDK's secondary tools (dpdk-proc-info,
 * dpdk-dumpcap) on a running node.
 */
bool lock_runtime_dir(const char *dir)
{
    if (dir[0] == '\0')
        return true;
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK;
}

void remove_runtime_dir()
{
    if (g_runtime_dir[0] != '\0')
        rmdir(g_runtime_dir);
}

} // namespace

int main(int argc, char **argv)
{
    std::string config_path;
    std::string cmd_file;
    std::string attach;
    bool check_only = false;
    bool interactive = false;
    static const option kOptions[] = {
        {"config", required_argument, nullptr, 'c'}, {"check", no_argument, nullptr, 'k'},
        {"interactive", no_argument, nullptr, 'i'},  {"cmd-file", required_argument, nullptr, 'f'},
        {"attach", required_argument, nullptr, 'a'}, {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},      {nullptr, 0, nullptr, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "+c:ihV", kOptions, nullptr)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'i':
            interactive = true;
            break;
        case 'f':
            cmd_file = optarg;
            break;
        case 'a':
            attach = optarg;
            break;
        case 'k':
            check_only = true;
            break;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        case 'V':
            fmt::print("flowhome {}\n", FLOWHOME_VERSION);
            return 0;
        default:
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (!attach.empty())
        return flowhome::attach_main(attach, std::vector<std::string>(argv + optind, argv + argc));
    if (config_path.empty()) {
        usage(stderr, argv[0]);
        return 2;
    }
    std::vector<std::string> extra(argv + optind, argv + argc);
    if (const std::string_view prefix = flowhome::eal_file_prefix(extra);
        flowhome::file_prefix_names_no_folder(prefix)) {
        fmt::print(stderr,
                   "flowhome: --file-prefix {}: a file prefix of dots alone names no folder "
                   "of its own\n",
                   prefix);
        return 2;
    }

    flowhome::NodeConfig cfg;
    try {
        cfg = flowhome::load_config(config_path);
    } catch (const flowhome::ConfigError &e) {
        fmt::print(stderr, "flowhome: {}\n", e.what());
        return 2;
    }
    /* The key file too, before DPDK: a refused one is the configuration's
     * (exit 2). The node reads it again once DPDK is up, and warns then. */
    if (cfg.gossip.enabled) {
        try {
            flowhome::load_gossip_keys(cfg.gossip, check_only);
        } catch (const std::runtime_error &e) {
            fmt::print(stderr, "flowhome: {}: {}\n", config_path, e.what());
            return 2;
        }
    }
    if (check_only) {
        fmt::print("{}: ok\n", config_path);
        return 0;
    }

    std::vector<std::string> eal_args = flowhome::eal_arguments(cfg, argv[0], extra);
    std::vector<char *> eal_argv;
    for (std::string &a : eal_args)
        eal_argv.push_back(a.data());
    eal_argv.push_back(nullptr);
    /* Before the EAL starts: a signal while it initialises (which creates
     * the runtime folder) is kept and acted on once it has, so the folder
     * is removed as on any other stop. A closed stdout or stderr must not
     * stop a running node: writes to it fail instead (EPIPE). */
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    /* A hang-up (its terminal closed, an ssh session dropped) stops the
     * node in order too, rather than killing it where it stands; started
     * under nohup, which ignores it, the node keeps it ignored. */
    if (struct sigaction hup{}; sigaction(SIGHUP, nullptr, &hup) == 0 && hup.sa_handler != SIG_IGN)
        std::signal(SIGHUP, on_signal);
    std::signal(SIGUSR1, on_report);
    std::signal(SIGPIPE, SIG_IGN);
    /* A capture that meets a file size limit (RLIMIT_FSIZE) fails its
     * write (EFBIG), counted, rather than ending the node. */
    std::signal(SIGXFSZ, SIG_IGN);
    std::atexit(remove_runtime_dir);
    const bool no_shconf = std::any_of(eal_args.begin(), eal_args.end(), [](const std::string &a) {
        return flowhome::eal_option_unshares(a);
    });
    if (rte_eal_init(static_cast<int>(eal_args.size()), eal_argv.data()) < 0) {
        const int err = rte_errno;
        fmt::print(stderr, "flowhome: cannot initialise DPDK: {}{}\n", rte_strerror(err),
                   err == EACCES && cfg.eal.huge_pages
                       ? " (no hugepages to map? reserve some, or set eal.huge_pages: false)"
                       : "");
        /* The folder, created early, goes too (when empty), unless it is a
         * running node's. */
        if (no_shconf && lock_runtime_dir(rte_eal_get_runtime_dir()))
            std::snprintf(g_runtime_dir, sizeof(g_runtime_dir), "%s", rte_eal_get_runtime_dir());
        return 1;
    }
    const char *runtime_dir = rte_eal_get_runtime_dir();
    if (no_shconf && !lock_runtime_dir(runtime_dir)) {
        fmt::print(stderr,
                   "flowhome: another flowhome process runs with the EAL file prefix of {} "
                   "(it holds the folder's lock); give this one another prefix "
                   "(eal.file_prefix, or -- --file-prefix=NAME)\n",
                   runtime_dir);
        rte_eal_cleanup();
        return 1;
    }
    std::snprintf(g_runtime_dir, sizeof(g_runtime_dir), "%s", runtime_dir);
    if (g_signal != 0) {
        fmt::print("flowhome: stopped by signal {} while DPDK initialised\n",
                   static_cast<int>(g_signal));
        rte_eal_cleanup();
        return 0; /* asked to stop, as any later stop: not a failure */
    }

    int rc = 0;
    try {
        flowhome::Node node(cfg);
        /* Telemetry reads the node until it goes, also when what follows
         * throws (a control socket path in use, say). */
        struct TelemetryAttached {
            explicit TelemetryAttached(flowhome::Node &n) { flowhome::attach_telemetry(&n); }
            ~TelemetryAttached() { flowhome::attach_telemetry(nullptr); }
            TelemetryAttached(const TelemetryAttached &) = delete;
            TelemetryAttached &operator=(const TelemetryAttached &) = delete;
        } telemetry(node);
        const std::string sock = socket_path(cfg);
        flowhome::CaptureManager capture(node); /* one per node, whichever front end asks */
        flowhome::OperatorServer server(node, {.socket_path = sock,
                                               .metrics_address = cfg.console.metrics_address,
                                               .metrics_port = cfg.console.metrics_port,
                                               .capture = &capture});
        if (g_signal != 0) {
            /* Asked to stop while the node was built (its table, its ports,
             * the clock's next second): it has told the fleet nothing, and
             * tells it nothing now. */
            fmt::print("flowhome: stopped by signal {} before the node started\n",
                       static_cast<int>(g_signal));
        } else {
            /* Started only once the socket is ours: a node refused for a socket in
             * use has sent nothing to the fleet. */
            node.start();
            fmt::print("flowhome: node {} running with {} worker(s){}{}\n", cfg.node_id,
                       cfg.lcores.workers.size(),
                       sock.empty() ? "" : fmt::format("; control socket {}", sock),
                       interactive || !cmd_file.empty() ? ""
                                                        : "; SIGINT, SIGTERM or SIGHUP stops it");
            std::fflush(stdout);
            flowhome::Console console(node, {.capture = &capture});
            bool stopped_by_signal = true;
            if (!cmd_file.empty()) {
                const int failed = flowhome::run_command_file(console, cmd_file, &g_signal);
                if (failed != 0)
                    rc = 1;
            }
            if (g_signal != 0) {
                /* stopped in the command file: stopped_by_signal stays true */
            } else if (interactive && !console.quit_requested()) {
                flowhome::run_console(console, &g_signal);
                stopped_by_signal = g_signal != 0;
            } else if (!cmd_file.empty() || console.quit_requested()) {
                stopped_by_signal = false;
            } else {
                while (g_signal == 0) {
                    usleep(20 * 1000);
                    if (g_report != 0) {
                        g_report = 0;
                        flowhome::put_text(stdout, fmt::format("{}--\n", node.stats_report()));
                    }
                }
            }
            node.stop();
            if (stopped_by_signal)
                flowhome::put_text(stdout, fmt::format("flowhome: stopped by signal {}\n",
                                                       static_cast<int>(g_signal)));
            flowhome::put_text(stdout, node.stats_report());
        }
    } catch (const std::exception &e) {
        fmt::print(stderr, "flowhome: {}\n", e.what());
        rc = 1;
    }
    rte_eal_cleanup();
    return rc;
}
