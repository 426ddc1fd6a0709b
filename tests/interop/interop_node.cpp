/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A flowhome node for the kernel interop test: the real Node (workers,
 * control loop, templates) on the wire port its YAML file names
 * (net_af_packet on a veth), with its local port replaced by an in-process
 * ring so that everything delivered locally can be written out as hex, one
 * frame per line. Ownership can be seeded from the command line, because
 * the test must send packets of connections that a kernel peer owns.
 *
 *   interop_node -c FILE -o LOCAL.hex [-s SECONDS] [--own "PROTO CLIENT:PORT VIP:PORT NODE"]...
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "flowhome/config.hpp"
#include "flowhome/eal.hpp"
#include "flowhome/node.hpp"
#include "flowhome/ports.hpp"

using namespace flowhome;

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int)
{
    g_stop = 1;
}

std::pair<IpAddr, uint16_t> endpoint(const std::string &s)
{
    /* "192.0.2.1:80" or "[2001:db8::1]:80" */
    const auto colon = s.rfind(':');
    std::string host = s.substr(0, colon);
    if (!host.empty() && host.front() == '[')
        host = host.substr(1, host.size() - 2);
    const auto a = IpAddr::parse(host);
    if (!a || colon == std::string::npos)
        throw std::invalid_argument("bad endpoint " + s);
    return {*a, static_cast<uint16_t>(std::stoul(s.substr(colon + 1)))};
}

std::pair<FlowKey, NodeId> parse_own(const std::string &spec)
{
    std::istringstream in(spec);
    std::string proto, client, vip;
    unsigned node = 0;
    in >> proto >> client >> vip >> node;
    const auto [c, cport] = endpoint(client);
    const auto [v, vport] = endpoint(vip);
    const uint8_t p = proto == "tcp" ? kProtoTcp : kProtoUdp;
    FlowKey k = c.family == Family::ipv4
                    ? FlowKey::make4(c.v4_be(), htons(cport), v.v4_be(), htons(vport), p)
                    : FlowKey::make6(c.bytes.data(), htons(cport), v.bytes.data(), htons(vport), p);
    return {k, static_cast<NodeId>(node)};
}

} // namespace

int main(int argc, char **argv)
{
    std::string config_path, out_path;
    double seconds = 10;
    std::vector<std::string> owns;
    static const option kOptions[] = {{"own", required_argument, nullptr, 'w'},
                                      {nullptr, 0, nullptr, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:o:s:", kOptions, nullptr)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 's':
            seconds = std::stod(optarg);
            break;
        case 'w':
            owns.emplace_back(optarg);
            break;
        default:
            return 2;
        }
    }
    NodeConfig cfg;
    try {
        cfg = load_config(config_path);
    } catch (const ConfigError &e) {
        fmt::print(stderr, "{}\n", e.what());
        return 2;
    }
    auto args = eal_arguments(cfg, argv[0]);
    std::vector<char *> eal_argv;
    for (auto &a : args)
        eal_argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0)
        return 1;
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);

    int rc = 0;
    {
        rte_ring *lrx = rte_ring_create("lrx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        rte_ring *ltx = rte_ring_create("ltx", 4096, 0, RING_F_SC_DEQ);
        const int local = rte_eth_from_rings("ring_local", &lrx, 1, &ltx, 1, 0);
        PortConfig lp;
        lp.name = "local";
        lp.device = "ring_local";
        lp.role = PortRole::local;
        cfg.ports.push_back(lp);

        FILE *out = std::fopen(out_path.c_str(), "w");
        if (out == nullptr || local < 0) {
            fmt::print(stderr, "cannot set up the local side\n");
            return 1;
        }
        try {
            Node node(cfg,
                      Node::PortIds{find_port(*cfg.wire_port()), static_cast<uint16_t>(local)});
            for (const auto &spec : owns) {
                const auto [key, owner] = parse_own(spec);
                node.table().upsert(key, {.owner = owner, .version = 1});
            }
            node.start();
            fmt::print("ready\n");
            std::fflush(stdout);
            const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(seconds * rte_get_tsc_hz());
            while (!g_stop && rte_rdtsc() < end) {
                void *obj = nullptr;
                while (rte_ring_dequeue(ltx, &obj) == 0) {
                    auto *m = static_cast<rte_mbuf *>(obj);
                    const auto *p = rte_pktmbuf_mtod(m, const uint8_t *);
                    for (uint16_t i = 0; i < m->data_len; ++i)
                        std::fprintf(out, "%02x", p[i]);
                    std::fputc('\n', out);
                    rte_pktmbuf_free(m);
                }
                std::fflush(out);
                usleep(2000);
            }
            node.stop();
            fmt::print("{}", node.stats_report());
        } catch (const std::exception &e) {
            fmt::print(stderr, "interop_node: {}\n", e.what());
            rc = 1;
        }
        std::fclose(out);
    }
    rte_eal_cleanup();
    return rc;
}
