#include "portmap/mapping_targets.hpp"

#include "holepunch/nat_mapping.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <map>

namespace punchgate {

bool is_lan_ipv4(const std::string& ip) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) != 1) return false;
  uint32_t a = ntohl(v4.s_addr);
  auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  return in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10);
}

std::vector<MappingTarget> mapping_targets(const std::vector<Multiaddr>& listen_addrs) {
  std::vector<MappingTarget> out;
  std::map<uint16_t, bool> has_public;
  for (const Multiaddr& a : listen_addrs) {
    if (a.is_relayed()) continue;
    auto ep = quic_endpoint_of(a);
    if (!ep || ep->is_dns || ep->family != AF_INET) continue;
    if (is_public_ip(ep->host)) has_public[ep->port] = true;
    if (!is_lan_ipv4(ep->host)) continue;
    auto it = std::find_if(out.begin(), out.end(), [&](const MappingTarget& t) { return t.port == ep->port; });
    if (it == out.end()) it = out.insert(out.end(), MappingTarget{ep->port, {}});
    if (std::find(it->lan_ips.begin(), it->lan_ips.end(), ep->host) == it->lan_ips.end()) {
      it->lan_ips.push_back(ep->host);
    }
  }
  std::erase_if(out, [&](const MappingTarget& t) { return has_public[t.port]; });
  return out;
}

std::string internal_client_for(const MappingTarget& t, const std::string& gateway_lan_addr) {
  if (std::find(t.lan_ips.begin(), t.lan_ips.end(), gateway_lan_addr) != t.lan_ips.end()) return gateway_lan_addr;
  return t.lan_ips.empty() ? gateway_lan_addr : t.lan_ips.front();
}

Multiaddr mapped_quic_addr(const std::string& ip, uint16_t port) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) != 1) return {};
  auto m = Multiaddr::parse("/ip4/" + ip + "/udp/" + std::to_string(port) + "/quic-v1");
  return m ? *m : Multiaddr{};
}

bool worth_advertising(const std::string& external_ip) {
  return !mapped_quic_addr(external_ip, 1).empty() && is_public_ip(external_ip);
}

}  // namespace punchgate
