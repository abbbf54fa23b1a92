// Which of our listening sockets a home gateway could forward to: IPv4 QUIC sockets reachable
// on a LAN address (bound to one, or to 0.0.0.0 on a host that has one). Pure, from the host's
// listen addresses (unspecified binds already expanded to interface addresses).
#pragma once

#include "punchgate/wire/multiaddr.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace punchgate {

struct MappingTarget {
  uint16_t port = 0;
  std::vector<std::string> lan_ips;  // our LAN addresses on that port, in listen order
};

// 10/8, 172.16/12, 192.168/16 and 100.64/10 (a LAN behind a carrier-grade NAT).
bool is_lan_ipv4(const std::string& ip);

// One target per port that has a LAN IPv4 address and no public one (a socket already on a
// public address needs no gateway). Loopback, link-local, IPv6 and relayed addresses never count.
std::vector<MappingTarget> mapping_targets(const std::vector<Multiaddr>& listen_addrs);

// The address to name as the mapping's internal client: the one the gateway said we reach it
// from when it is ours on that port (a 0.0.0.0 bind), else our first LAN address.
std::string internal_client_for(const MappingTarget& t, const std::string& gateway_lan_addr);

// /ip4/<ip>/udp/<port>/quic-v1 (empty when `ip` is not an IPv4 literal).
Multiaddr mapped_quic_addr(const std::string& ip, uint16_t port);

// A mapping's external address is worth advertising when it is public; a private, CGNAT or
// reserved one means another NAT upstream of the gateway.
bool worth_advertising(const std::string& external_ip);

}  // namespace punchgate
