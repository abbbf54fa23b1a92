#include "relay/circuit_addr.hpp"

namespace punchgate {

namespace {
constexpr std::string_view kCircuit = "/p2p-circuit";
}

Result<CircuitAddr> parse_circuit_addr(const Multiaddr& addr) {
  std::string text = addr.to_string();
  size_t at = text.find(kCircuit);
  // "/p2p-circuit" must be a whole component: followed by the end or another component.
  while (at != std::string::npos && at + kCircuit.size() < text.size() && text[at + kCircuit.size()] != '/') {
    at = text.find(kCircuit, at + 1);
  }
  if (at == std::string::npos) return make_error("{} is not a relayed address (no /p2p-circuit)", text);
  auto relay = Multiaddr::parse(std::string_view(text).substr(0, at));
  if (!relay || relay->is_relayed()) return make_error("{}: bad relay part before /p2p-circuit", text);
  auto relay_id = relay->peer_id();
  if (!relay_id) return make_error("{}: the relay part must end in /p2p/<relay id>", text);
  CircuitAddr out{*relay, *relay_id, std::nullopt};
  std::string_view tail = std::string_view(text).substr(at + kCircuit.size());
  if (tail.empty()) return out;
  auto target = Multiaddr::parse(tail);
  if (!target || target->components().size() != 1 || !target->peer_id()) {
    return make_error("{}: only /p2p/<target id> may follow /p2p-circuit", text);
  }
  out.target = *target->peer_id();
  return out;
}

Multiaddr make_circuit_addr(const Multiaddr& relay, const std::optional<PeerId>& target) {
  auto circuit = Multiaddr::parse(kCircuit);  // constant: cannot fail
  Multiaddr out = relay.encapsulate(*circuit);
  return target ? out.with_peer_id(*target) : out;
}

}  // namespace punchgate
