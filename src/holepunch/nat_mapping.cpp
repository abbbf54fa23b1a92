#include "holepunch/nat_mapping.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace punchgate {

const char* to_string(NatMapping m) {
  switch (m) {
    case NatMapping::EndpointIndependent: return "endpoint-independent";
    case NatMapping::EndpointDependent: return "endpoint-dependent";
    case NatMapping::Unknown: break;
  }
  return "unknown";
}

bool is_public_ip(const std::string& ip) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    uint32_t a = ntohl(v4.s_addr);
    auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
    return !(in(0x00000000, 8) || in(0x0A000000, 8) || in(0x7F000000, 8) || in(0xA9FE0000, 16) ||
             in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10) || in(0xE0000000, 4) ||
             a == 0xFFFFFFFF);
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) ||
        IN6_IS_ADDR_MULTICAST(&v6) || IN6_IS_ADDR_V4MAPPED(&v6)) {
      return false;
    }
    return (v6.s6_addr[0] & 0xFE) != 0xFC;  // fc00::/7 unique local
  }
  return false;
}

NatMappingVerdict classify_nat_mapping(const std::map<Multiaddr, std::set<PeerId>>& observed) {
  // ip -> port -> reporters
  std::map<std::string, std::map<uint16_t, std::set<PeerId>>> by_ip;
  for (const auto& [addr, reporters] : observed) {
    auto ep = quic_endpoint_of(addr);
    if (!ep || ep->is_dns || addr.is_relayed()) continue;
    by_ip[ep->host][ep->port].insert(reporters.begin(), reporters.end());
  }
  NatMappingVerdict independent;
  for (const auto& [ip, ports] : by_ip) {
    std::set<PeerId> everyone;
    for (const auto& [port, reporters] : ports) everyone.insert(reporters.begin(), reporters.end());
    if (ports.size() >= 2 && everyone.size() >= 2) {
      NatMappingVerdict v{NatMapping::EndpointDependent, ip, {}};
      for (const auto& [port, r] : ports) v.ports.push_back(port);
      return v;
    }
    if (ports.size() == 1 && ports.begin()->second.size() >= 2 && independent.mapping == NatMapping::Unknown) {
      independent = {NatMapping::EndpointIndependent, ip, {ports.begin()->first}};
    }
  }
  return independent;
}

bool looks_endpoint_dependent(const std::vector<Multiaddr>& addrs, std::string* ip) {
  std::map<std::string, std::set<uint16_t>> ports;
  for (const Multiaddr& a : addrs) {
    auto ep = quic_endpoint_of(a);
    if (!ep || ep->is_dns || a.is_relayed() || !is_public_ip(ep->host)) continue;
    auto& set = ports[ep->host];
    set.insert(ep->port);
    if (set.size() >= 2) {
      if (ip) *ip = ep->host;
      return true;
    }
  }
  return false;
}

}  // namespace punchgate
