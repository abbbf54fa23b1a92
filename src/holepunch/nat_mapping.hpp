// What our NAT does to our listening port, judged from the addresses other peers observed us at
// (identify observedAddr): the same public port for every peer (endpoint-independent mapping,
// punchable by plain DCUtR) or a different port per peer (endpoint-dependent, "symmetric": the
// other side cannot predict our port, so only a birthday-style punch can work).
#pragma once

#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace punchgate {

enum class NatMapping { Unknown, EndpointIndependent, EndpointDependent };
const char* to_string(NatMapping m);

struct NatMappingVerdict {
  NatMapping mapping = NatMapping::Unknown;
  std::string public_ip;            // the IP the verdict is about (empty: Unknown)
  std::vector<uint16_t> ports;      // the ports peers saw on it
};

// `observed`: each observed QUIC address and the distinct peers that reported it. Dependent when
// one public IP was seen with two or more ports by different peers; independent when one address
// was reported by two or more peers and no IP has a second port; otherwise unknown.
NatMappingVerdict classify_nat_mapping(const std::map<Multiaddr, std::set<PeerId>>& observed);

// The same judgement about another peer from the addresses it offers in a punch: two or more
// ports on one public IP mean it saw different ports from different peers.
bool looks_endpoint_dependent(const std::vector<Multiaddr>& addrs, std::string* ip = nullptr);

// Public (globally routable) IPv4/IPv6 address, not loopback, private, link-local or CGNAT.
bool is_public_ip(const std::string& ip);

}  // namespace punchgate
