// How a node takes part in relaying (--relay-mode, --relay-server and the caps): parsing and
// validation, pure.
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/wire/multiaddr.hpp"
#include "relay/relay_limits.hpp"

#include <optional>
#include <string_view>

namespace punchgate {

// auto: a private node reserves on relays it is connected to (autonat/relay_roles decides);
// off: never reserve and never dial through relays; fixed: reserve on this relay only.
enum class RelayMode { Auto, Off, Fixed };
// auto: serve as a relay when publicly reachable (autonat/relay_roles decides from AutoNAT).
enum class RelayServerMode { Auto, On, Off };

struct RelayConfig {
  RelayMode mode = RelayMode::Auto;
  std::optional<Multiaddr> fixed_relay;  // mode Fixed: ends in /p2p/<relay>
  RelayServerMode server = RelayServerMode::Auto;
  RelayLimits limits;
  // Reservations a private node keeps at once (Kaspa's private nodes keep two).
  size_t target_reservations = 2;
};

// "auto", "off" or a relay multiaddr ending in /p2p/<id> (any other text is an error naming it).
Status parse_relay_mode(std::string_view text, RelayConfig& cfg);
Status parse_relay_server(std::string_view text, RelayConfig& cfg);

}  // namespace punchgate
