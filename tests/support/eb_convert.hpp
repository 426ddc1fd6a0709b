/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * Converts the independent frame builder's address types (encap_builder.hpp)
 * into flowhome's, for the encapsulation tests.
 */
#pragma once

#include <algorithm>

#include "encap_builder.hpp"
#include "flowhome/types.hpp"

namespace flowhome::test {

inline IpAddr to_ip(const eb::Ip4 &a)
{
    IpAddr r;
    r.family = Family::ipv4;
    std::copy(a.begin(), a.end(), r.bytes.begin());
    return r;
}

inline IpAddr to_ip(const eb::Ip6 &a)
{
    IpAddr r;
    r.family = Family::ipv6;
    r.bytes = a;
    return r;
}

inline MacAddr to_mac(const eb::Mac &m)
{
    MacAddr r;
    r.bytes = m;
    return r;
}

} // namespace flowhome::test
