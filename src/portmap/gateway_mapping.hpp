// Asking the home gateway to forward our QUIC port: NAT-PMP (libnatpmp) first, as it is one UDP
// round trip to the default gateway, then UPnP-IGD (libminiupnpc: SSDP discovery + SOAP). These
// calls block (discovery alone waits up to 2 s), so PortMapper runs them on the libuv thread pool;
// nothing here touches the loop.
#pragma once

#include "punchgate/core/result.hpp"

#include <cstdint>
#include <string>

namespace punchgate {

enum class MappingProtocol { NatPmp, Upnp };
const char* to_string(MappingProtocol p);

struct GatewayMapping {
  MappingProtocol protocol = MappingProtocol::NatPmp;
  std::string external_ip;
  uint16_t external_port = 0;
  uint16_t internal_port = 0;
  uint32_t lifetime_s = 0;  // 0: permanent (some UPnP gateways allow nothing else)
  // UPnP only: where to send the delete (discovery is not repeated for it).
  std::string upnp_control_url;
  std::string upnp_service_type;
};

// Maps UDP `internal_port` (asking for the same external port) for `lifetime_s`. Tries NAT-PMP,
// then UPnP; the error names why each failed.
Result<GatewayMapping> map_udp_port(uint16_t internal_port, uint32_t lifetime_s);
// Renews an existing mapping the same way it was made.
Result<GatewayMapping> renew_mapping(const GatewayMapping& m);
Status remove_mapping(const GatewayMapping& m);

}  // namespace punchgate
