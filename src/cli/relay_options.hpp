// --relay-* flags and their PUNCHGATE_RELAY_* twins.
#pragma once

#include "daemon/env_file.hpp"
#include "punchgate/core/result.hpp"
#include "relay/relay_config.hpp"

#include <string>

namespace CLI {
class App;
}

namespace punchgate {

struct RelayOptionText {
  std::string mode, server, max_reservations, max_circuits, max_circuits_per_peer, circuit_duration, circuit_bytes,
      reservation_ttl;
};

void add_relay_options(CLI::App& app, RelayOptionText& text);
// Flag values, else the environment's, validated into `cfg`. With `service_env`, the values that
// were given are appended to it (for `up`).
Status finish_relay_options(const RelayOptionText& text, RelayConfig& cfg, EnvVars* service_env);

}  // namespace punchgate
