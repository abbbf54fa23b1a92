// The gateway requests themselves: NAT-PMP (libnatpmp) and UPnP-IGD (libminiupnpc). Every call
// here blocks (NAT-PMP waits for the gateway's answer, UPnP discovery waits for SSDP replies and
// speaks HTTP/SOAP), so PortMapper only runs them on the libuv thread pool. Nothing here touches
// the loop or shares state between calls, except the UpnpGateway a caller passes in.
#pragma once

#include "portmap/mapping_lifecycle.hpp"
#include "punchgate/core/result.hpp"

#include <miniupnpc/igd_desc_parse.h>
#include <miniupnpc/miniupnpc.h>

#include <cstdint>
#include <memory>
#include <string>

namespace punchgate {

// NAT-PMP (RFC 6886) with the default gateway: the external address, then the UDP mapping.
// `timeout_ms` bounds the whole call (libnatpmp alone would retry for about a minute).
MapOutcome natpmp_map(uint16_t internal_port, uint16_t external_port, uint32_t lifetime_s, uint64_t timeout_ms);
// Lifetime 0 deletes the mapping of `internal_port`.
MapOutcome natpmp_unmap(uint16_t internal_port, uint64_t timeout_ms);

// A UPnP Internet Gateway Device found by SSDP, with its control URLs (freed on destruction).
// Kept between calls so renewals and the delete at shutdown skip the 2 s discovery.
class UpnpGateway {
 public:
  // SSDP search for `delay_ms`, then the first connected IGD among the answers.
  static Result<std::unique_ptr<UpnpGateway>> discover(int delay_ms);
  ~UpnpGateway();
  UpnpGateway(const UpnpGateway&) = delete;
  UpnpGateway& operator=(const UpnpGateway&) = delete;

  // Our address on the link to the gateway, as the gateway sees it.
  const std::string& lan_addr() const { return lan_addr_; }
  const char* root_url() const { return urls_.rootdescURL ? urls_.rootdescURL : ""; }

  // Maps UDP external_port (0: any the gateway picks) to internal_client:internal_port. Asks for
  // `lifetime_s`; falls back to a permanent mapping when the gateway allows only those.
  MapOutcome add(uint16_t internal_port, const std::string& internal_client, uint16_t external_port,
                 uint32_t lifetime_s);
  MapOutcome remove(uint16_t external_port);

 private:
  UpnpGateway() = default;
  Result<std::string> external_ip();
  int add_one(uint16_t external_port, uint16_t internal_port, const std::string& client, const std::string& lease);

  UPNPUrls urls_{};
  IGDdatas data_{};
  std::string lan_addr_;
};

}  // namespace punchgate
