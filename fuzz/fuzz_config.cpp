/* SPDX-License-Identifier: BSD-3-Clause */
// libFuzzer harness for the node-file loader: arbitrary bytes must end in a
// NodeConfig or a ConfigError. Anything else (a yaml-cpp exception escaping,
// another exception, a crash, a sanitizer report, a hang) is a finding.
//
// Run it with scripts/fuzz (which builds it), or by hand from build-fuzz
// (seeds: the example configs); to keep the checked-in seeds unchanged, put a
// scratch directory first:
//   mkdir -p /tmp/corpus && build-fuzz/fuzz/fuzz_config -max_total_time=60 /tmp/corpus \
//       fuzz/corpus/config

#include <cstddef>
#include <cstdint>
#include <string>

#include "flowhome/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    try {
        const flowhome::NodeConfig cfg = flowhome::load_config_text(text, "fuzz.yaml");
        // A loaded config must satisfy the invariants the other planes rely on.
        if (cfg.wire_port() == nullptr || cfg.lcores.workers.empty() || cfg.vips.empty() ||
            cfg.node_id == flowhome::kInvalidNode || cfg.node_id > flowhome::kMaxNodeId)
            __builtin_trap();
        for (const auto &peer : cfg.peers)
            if (cfg.domain(peer.domain) == nullptr)
                __builtin_trap();
    } catch (const flowhome::ConfigError &e) {
        // The message must be formed (what() is built in the constructor).
        if (e.what()[0] == '\0')
            __builtin_trap();
    }
    return 0;
}
