/* SPDX-License-Identifier: BSD-3-Clause */
/** @file Catch2 printers for flowhome enums, so failures name values. */
#pragma once

#include <string>

#include <catch2/catch.hpp>

#include "flowhome/drop_reason.hpp"
#include "flowhome/packet.hpp"

namespace Catch {
template <> struct StringMaker<flowhome::DropReason> {
    static std::string convert(flowhome::DropReason r)
    {
        return std::string(flowhome::drop_reason_name(r));
    }
};
template <> struct StringMaker<flowhome::ParseStatus> {
    static std::string convert(flowhome::ParseStatus s)
    {
        switch (s) {
        case flowhome::ParseStatus::ok:
            return "ok";
        case flowhome::ParseStatus::not_ip:
            return "not_ip";
        case flowhome::ParseStatus::drop:
            return "drop";
        }
        return "?";
    }
};
template <> struct StringMaker<flowhome::Family> {
    static std::string convert(flowhome::Family f) { return std::to_string(static_cast<int>(f)); }
};
} // namespace Catch
