#include "autonat/relay_roles.hpp"

#include <fmt/format.h>

namespace punchgate {

RelayRoles decide_relay_roles(const RelayConfig& config, const RelayRoleFacts& facts) {
  const bool directly_public = facts.reachability == Reachability::Public && facts.public_addr_is_own;
  RelayRoles roles;
  switch (config.server) {
    case RelayServerMode::On: roles.serve = true; break;
    case RelayServerMode::Off: roles.serve = false; break;
    case RelayServerMode::Auto:
      roles.serve = facts.reachability == Reachability::Unknown ? !facts.has_bootstrap : directly_public;
      break;
  }
  switch (config.mode) {
    case RelayMode::Off: roles.reserve = false; break;
    case RelayMode::Fixed: roles.reserve = true; break;
    case RelayMode::Auto:
      roles.reserve = facts.reachability == Reachability::Unknown ? facts.has_bootstrap : !directly_public;
      break;
  }
  return roles;
}

bool ip_is_own(const std::optional<Multiaddr>& addr, const std::vector<Multiaddr>& own) {
  if (!addr || addr->components().empty()) return false;
  const MultiaddrComponent& ip = addr->components().front();
  if (ip.protocol != MultiaddrProtocol::Ip4 && ip.protocol != MultiaddrProtocol::Ip6) return false;
  for (const Multiaddr& a : own) {
    if (!a.components().empty() && a.components().front() == ip) return true;
  }
  return false;
}

std::string to_string(const RelayRoles& roles) {
  return fmt::format("serve={} reserve={}", roles.serve, roles.reserve);
}

}  // namespace punchgate
