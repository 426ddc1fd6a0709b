/* SPDX-License-Identifier: BSD-3-Clause */
#pragma once

#include <string>

#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

namespace flowhome::test {

/**
 * A net_ring port over an RX and a TX ring of its own (@p name "_rx" and
 * "_tx"), stopped, removed and its rings freed however the test ends: a
 * REQUIRE that fails half-way leaves no name taken for what runs after it
 * (another test case, or the same one again for its next SECTION). port
 * is negative when the port could not be made.
 */
class RingPort {
public:
    RingPort(const std::string &name, unsigned size)
        : device("net_ring_" + name),
          rx(rte_ring_create((name + "_rx").c_str(), size, SOCKET_ID_ANY,
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
            /* Closes the port and frees its device's name, which
             * rte_eth_dev_close() alone keeps. */
            rte_vdev_uninit(device.c_str());
        }
        rte_ring_free(rx);
        rte_ring_free(tx);
    }
    RingPort(const RingPort &) = delete;
    RingPort &operator=(const RingPort &) = delete;

    uint16_t id() const noexcept { return static_cast<uint16_t>(port); }

    const std::string device; /**< the virtual device rte_eth_from_rings() makes */
    rte_ring *rx;
    rte_ring *tx;
    int port = -1;
};

} // namespace flowhome::test
