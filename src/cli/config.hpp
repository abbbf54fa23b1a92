// Command line + environment -> validated configuration. Bad values are reported as one line that
// names the value, never half-accepted.
#pragma once

#include "daemon/env_file.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/tunnel/tunnel_spec.hpp"
#include "punchgate/wire/multiaddr.hpp"
#include "relay/relay_config.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace punchgate {

enum class Command {
  Run, Id, Ping, Pipe, Dht,
  // service mode and control socket clients
  Up, Down, ShowStatus, Logs, TunnelAdd, TunnelRm, ExposeAdd, ExposeRm, Supervise, ServiceUnit,
};

enum class DhtOp { FindProviders, Provide, Put, Get, FindPeer };

struct Config {
  Command command = Command::Run;
  std::filesystem::path identity_path;
  std::vector<Multiaddr> listen;
  std::vector<Multiaddr> bootstrap;
  std::vector<ExposeSpec> exposes;
  std::vector<TunnelSpec> tunnels;  // --tunnel, then --tunnel-by-name (peer empty)
  bool mdns = true;
  bool holepunch = true;  // DCUtR on relayed connections
  bool hard_nat = true;   // birthday punch for endpoint-dependent NATs
  bool port_mapping = true;  // ask the home gateway to forward our QUIC port (NAT-PMP / UPnP)
  uint32_t port_mapping_lease_s = 3600;
  std::vector<PeerId> allow;  // empty: every peer may connect
  RelayConfig relay;
  // Control socket of a node (run) or the one to talk to (status, tunnel, expose); empty: off.
  std::filesystem::path control_socket;
  // up: the node configuration as PUNCHGATE_* variables (the values as given, so parsing them
  // back yields this same Config).
  EnvVars service_env;
  // status
  bool json = false;
  // logs
  bool follow = false;
  size_t log_lines = 100;
  // tunnel add/rm, expose add/rm: the argument as given (validated)
  std::string control_arg;
  bool by_name = false;
  // service-unit
  std::string unit_kind;  // "systemd" or "launchd"
  // pipe
  PeerId pipe_peer;
  std::string pipe_service;
  // dht
  DhtOp dht_op = DhtOp::FindProviders;
  Bytes dht_key;
  Bytes dht_value;
  PeerId dht_peer;
  // ping
  Multiaddr ping_target;
  uint32_t ping_count = 3;
  uint64_t ping_interval_ms = 1000;
};

// Loads `--env-file PATH` (if present in argv) into the environment, overriding, before flags
// and PUNCHGATE_* variables are read. launchd and the fallback supervisor start the node this way.
Status apply_env_file_arg(int argc, char** argv);

// Parses argv (and PUNCHGATE_* environment variables). On --help/--version prints and returns
// an exit code via `exit_code`; on a bad value returns the error line.
Result<Config> parse_command_line(int argc, char** argv, int& exit_code);

// Validators shared by flag and environment parsing.
Result<Multiaddr> parse_listen_addr(const std::string& text);
Result<Multiaddr> parse_peer_addr(const std::string& text, const char* what);
// A DHT key as given on the command line: raw text, or "hex:…" for arbitrary bytes.
Result<Bytes> parse_dht_key(const std::string& text);
// The separator of list-valued PUNCHGATE_* variables is ','; a literal comma or backslash in an
// item is written \, and \\.
std::vector<std::string> split_env_list(const std::string& s);
std::string join_env_list(const std::vector<std::string>& items);

}  // namespace punchgate
