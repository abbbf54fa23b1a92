// The subcommands: each returns the process exit code.
#pragma once

#include "cli/config.hpp"
#include "punchgate/host/host.hpp"

#include <memory>

namespace punchgate {

int run_node(const Config& cfg);
int run_id(const Config& cfg);
int run_ping(const Config& cfg);
int run_pipe(const Config& cfg);
int run_dht(const Config& cfg);  // dht_command.cpp

// Loads the identity, creates the host and starts it (listen + bootstrap); errors are logged.
std::unique_ptr<Host> start_host(const Config& cfg, uv_loop_t* loop, HostConfig hc);

}  // namespace punchgate
