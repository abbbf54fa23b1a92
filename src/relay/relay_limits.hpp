// What a circuit relay v2 HOP server (hop_server.hpp) grants: how many reservations and circuits
// it holds at once, for how long, and the Limit it puts on each circuit.
#pragma once

#include "relay/circuit_message.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>

namespace punchgate {

struct RelayLimits {
  size_t max_reservations = 128;             // reservations held at once (all peers)
  size_t max_circuits = 64;                  // circuits open at once through this relay
  size_t max_circuits_per_peer = 8;          // open circuits per peer, counted at both ends (src or dst)
  uint32_t reservation_ttl_s = 3600;         // a reservation lasts this long; the client renews
  uint32_t circuit_duration_s = 3600;        // Limit.duration sent to both ends; 0 = no limit (field absent)
  uint64_t circuit_data_bytes = 1ull << 30;  // Limit.data per direction; 0 = no limit (field absent)
};

// The Limit message for circuits under `limits` (nullopt when both are unlimited). A zero field is
// left out rather than written as 0: absence is the plainest way to say "no limit".
inline std::optional<CircuitLimit> circuit_limit(const RelayLimits& limits) {
  if (limits.circuit_duration_s == 0 && limits.circuit_data_bytes == 0) return std::nullopt;
  CircuitLimit l;
  if (limits.circuit_duration_s != 0) l.duration = limits.circuit_duration_s;
  if (limits.circuit_data_bytes != 0) l.data = limits.circuit_data_bytes;
  return l;
}

}  // namespace punchgate
