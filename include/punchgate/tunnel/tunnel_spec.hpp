// --expose and --tunnel specifications: parsing and validation (pure, no IO).
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace punchgate {

enum class TunnelTransport { Tcp, Udp };
const char* to_string(TunnelTransport t);  // "tcp" / "udp"

// host:port as written by the user. IPv6 literals are written in brackets ("[::1]:22") and kept
// here without them.
struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;  // brackets added back for IPv6
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// --expose NAME=HOST:PORT[/udp]
struct ExposeSpec {
  std::string name;
  HostPort target;
  TunnelTransport transport = TunnelTransport::Tcp;
  std::string to_string() const;
};

// --tunnel PEER:SVC@BINDHOST:PORT[/udp], or --tunnel-by-name SVC@BINDHOST:PORT[/udp] (peer empty:
// any provider of SVC found in the DHT).
struct TunnelSpec {
  PeerId peer;
  std::string service;
  HostPort bind;
  TunnelTransport transport = TunnelTransport::Tcp;
  std::string to_string() const;
};

// Service names: 1..64 chars of [A-Za-z0-9._-], starting with an alphanumeric.
Status validate_service_name(std::string_view name);
// "host:port" or "[v6]:port"; host non-empty; port 1..65535 unless allow_port_zero.
Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero);

Result<ExposeSpec> parse_expose(std::string_view text);
Result<TunnelSpec> parse_tunnel(std::string_view text);
Result<TunnelSpec> parse_tunnel_by_name(std::string_view text);
// A tunnel's local end as `tunnel rm` names it: BINDHOST:PORT[/udp].
struct TunnelBind {
  HostPort bind;
  TunnelTransport transport = TunnelTransport::Tcp;
};
Result<TunnelBind> parse_tunnel_bind(std::string_view text);

// Whole-list checks: duplicate expose names (per transport is NOT enough: a name is unique),
// duplicate tunnel binds (same host, port and transport). Error names the duplicate.
Status validate_exposes(const std::vector<ExposeSpec>& specs);
Status validate_tunnels(const std::vector<TunnelSpec>& specs);

}  // namespace punchgate
