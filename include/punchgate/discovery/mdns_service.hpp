// mDNS peer discovery (libp2p/specs discovery/mdns.md): queries for _p2p._udp.local on
// 224.0.0.251:5353, answers others' queries with our dnsaddr TXT records, and dials the peers it
// finds (after identify, kad puts those that speak it into the routing table).
#pragma once

#include "punchgate/core/result.hpp"

#include <cstdint>
#include <memory>

namespace punchgate {

class Host;

struct MdnsConfig {
  uint64_t query_interval_ms = 60'000;  // re-query period after the startup burst
  uint16_t port = 5353;                 // tests may move it off the well-known port
};

class MdnsService {
 public:
  // Joins the multicast group on every IPv4 interface with multicast and starts querying.
  static Result<std::unique_ptr<MdnsService>> start(Host& host, MdnsConfig config);
  virtual ~MdnsService() = default;
  // Leaves the group and closes the socket; the loop can then finish.
  virtual void stop() = 0;
};

}  // namespace punchgate
