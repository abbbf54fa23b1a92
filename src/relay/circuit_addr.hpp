// Relayed addresses: <relay transport addr>/p2p/<R>/p2p-circuit[/p2p/<target>].
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <optional>

namespace punchgate {

struct CircuitAddr {
  Multiaddr relay;  // the relay's direct address, ending in /p2p/<relay_id>
  PeerId relay_id;
  std::optional<PeerId> target;  // absent in an advertised "…/p2p-circuit" address
};

// Exactly one /p2p-circuit, preceded by a direct address with /p2p/<relay> and followed by
// nothing or /p2p/<target>.
Result<CircuitAddr> parse_circuit_addr(const Multiaddr& addr);
// <relay>/p2p-circuit, or <relay>/p2p-circuit/p2p/<target> with a target.
Multiaddr make_circuit_addr(const Multiaddr& relay, const std::optional<PeerId>& target = std::nullopt);

}  // namespace punchgate
