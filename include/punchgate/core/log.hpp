// Logging: spdlog with key=value events ("tunnel accepted peer=… service=…").
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace punchgate {

// Sets the level from PUNCHGATE_LOG (trace|debug|info|warn|error|off), falling back to RUST_LOG.
// Unknown values fall back to info with a warning naming the value.
void init_logging();

// A log field value that may come from a peer: in double quotes, with quotes, backslashes and
// control/non-ASCII bytes escaped as \xNN (so it can never break a line or forge a field), and
// cut at 512 bytes.
std::string log_quote(std::string_view text);

}  // namespace punchgate
