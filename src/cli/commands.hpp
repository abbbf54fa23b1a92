// The subcommands: each returns the process exit code.
#pragma once

#include "cli/config.hpp"

namespace punchgate {

int run_node(const Config& cfg);
int run_id(const Config& cfg);
int run_ping(const Config& cfg);
int run_pipe(const Config& cfg);

}  // namespace punchgate
