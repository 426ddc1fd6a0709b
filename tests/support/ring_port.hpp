/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <string>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

namespace flowhome::test {

/**
 * A net_ring port over an RX and a TX ring of its own (@p name "_rx" and
 * "_tx"), stopped, closed and its rings freed however the test ends: a
 * REQUIRE that fails half-way leaves no name taken for the test cases
 * after it. port is negative when the port could not be made.
 */
class RingPort {
public:
    RingPort(const std::string &name, unsigned size)
        : rx(rte_ring_create((name + "_rx").c_str(), size, SOCKET_ID_ANY,
                             RING_F_SP_ENQ | RING_F_SC_DEQ)),
          tx(rte_ring_create((name + "_tx").c_str(), size, SOCKET_ID_ANY,
                             RING_F_SP_ENQ | RING_F_SC_DEQ))
    {
        if (rx != nullptr && tx != nullptr)
            port = rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, 0);
    }
    ~RingPort()
    {
        if (port >= 0) {
            rte_eth_dev_stop(id()); /* a started port is not closed */
            rte_eth_dev_close(id());
        }
        rte_ring_free(rx);
        rte_ring_free(tx);
    }
    RingPort(const RingPort &) = delete;
    RingPort &operator=(const RingPort &) = delete;

    uint16_t id() const noexcept { return static_cast<uint16_t>(port); }

    rte_ring *rx;
    rte_ring *tx;
    int port = -1;
};

} // namespace flowhome::test
