// Logging: spdlog with key=value events ("tunnel accepted peer=… service=…").
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace punchgate {

// Sets the level from PUNCHGATE_LOG (trace|debug|info|warn|error|off), falling back to RUST_LOG.
// Unknown values fall back to info with a warning naming the value.
void init_logging();

}  // namespace punchgate
