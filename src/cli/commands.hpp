// The subcommands: each returns the process exit code.
#pragma once

#include "cli/config.hpp"
#include "punchgate/host/host.hpp"

#include <functional>
#include <memory>

namespace punchgate {

int run_node(const Config& cfg);
int run_id(const Config& cfg);
int run_ping(const Config& cfg);
int run_pipe(const Config& cfg);
int run_dht(const Config& cfg);  // dht_command.cpp
// service_commands.cpp
int run_up(const Config& cfg);
int run_down(const Config& cfg);
int run_logs(const Config& cfg);
int run_supervise(const Config& cfg);
int run_service_unit(const Config& cfg);
// control_commands.cpp: clients of a running node's control socket
int run_status(const Config& cfg);
int run_control_change(const Config& cfg);  // tunnel add/rm, expose add/rm
// Waits until the node configured by cfg answers on its control socket and prints its summary;
// 1 (with the reason) when it does not within timeout_ms.
int wait_until_answering(const Config& cfg, uint64_t timeout_ms);

// Loads the identity, creates the host and starts it (listen + bootstrap); errors are logged.
// `before_start` runs on the created host before it listens and dials (services that must see
// the first connections, such as the relay client's circuit dialer, register there).
std::unique_ptr<Host> start_host(const Config& cfg, uv_loop_t* loop, HostConfig hc,
                                 const std::function<void(Host&)>& before_start = {});

}  // namespace punchgate
