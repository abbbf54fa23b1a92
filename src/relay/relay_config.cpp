#include "relay/relay_config.hpp"

namespace punchgate {

Status parse_relay_mode(std::string_view text, RelayConfig& cfg) {
  if (text == "auto") {
    cfg.mode = RelayMode::Auto;
    cfg.fixed_relay.reset();
    return {};
  }
  if (text == "off") {
    cfg.mode = RelayMode::Off;
    cfg.fixed_relay.reset();
    return {};
  }
  if (!text.starts_with("/")) {
    return make_error("invalid --relay-mode \"{}\": expected auto, off or a relay multiaddr ending in /p2p/<peer id>",
                      text);
  }
  auto addr = Multiaddr::parse(text);
  if (!addr) return make_error("invalid --relay-mode \"{}\": {}", text, addr.error().message);
  if (!addr->peer_id_multihash()) {
    return make_error("invalid --relay-mode \"{}\": the relay address must end in /p2p/<peer id>", text);
  }
  if (addr->is_relayed()) {
    return make_error("invalid --relay-mode \"{}\": a relay must be reachable directly, not through /p2p-circuit",
                      text);
  }
  cfg.mode = RelayMode::Fixed;
  cfg.fixed_relay = *addr;
  return {};
}

Status parse_relay_server(std::string_view text, RelayConfig& cfg) {
  if (text == "auto") {
    cfg.server = RelayServerMode::Auto;
  } else if (text == "on") {
    cfg.server = RelayServerMode::On;
  } else if (text == "off") {
    cfg.server = RelayServerMode::Off;
  } else {
    return make_error("invalid --relay-server \"{}\": expected on, off or auto", text);
  }
  return {};
}

}  // namespace punchgate
