// Which relay roles a node takes (serve /hop, reserve slots on relays), given its relay settings,
// whether it has bootstrap peers and what AutoNAT found. Pure; the node re-applies it on every
// reachability change.
#pragma once

#include "autonat/autonat_client.hpp"
#include "relay/relay_config.hpp"

#include <optional>
#include <string>
#include <vector>

namespace punchgate {

struct RelayRoleFacts {
  bool has_bootstrap = false;
  Reachability reachability = Reachability::Unknown;
  // The address AutoNAT confirmed is one of our own interface addresses: no NAT in between.
  // AutoNAT v1 dial-backs leave from the server's IP, which an address-restricted NAT lets through,
  // so "public" behind a NAT may still mean unreachable for peers we never contacted.
  bool public_addr_is_own = false;
};

struct RelayRoles {
  bool serve = false;    // serve circuit relay v2 /hop for others
  bool reserve = false;  // hold reservations on relays (be reachable through them)
  friend bool operator==(const RelayRoles&, const RelayRoles&) = default;
};

// auto server: serve when AutoNAT says public with no NAT in between; not when private; while
// unknown, a node without --bootstrap is taken to be public. auto reservations: reserve when
// private, or public only through a NAT; not when public on our own address; while unknown, a node
// with --bootstrap reserves. --relay-server on|off and --relay-mode off|<relay> are never overridden.
RelayRoles decide_relay_roles(const RelayConfig& config, const RelayRoleFacts& facts);

// Whether `addr`'s IP is the IP of one of `own` (interface addresses).
bool ip_is_own(const std::optional<Multiaddr>& addr, const std::vector<Multiaddr>& own);

std::string to_string(const RelayRoles& roles);  // "serve=true reserve=false"

}  // namespace punchgate
