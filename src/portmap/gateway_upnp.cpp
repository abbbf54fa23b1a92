// UPnP-IGD through libminiupnpc: SSDP discovery, then WANIPConnection SOAP calls.
#include "portmap/gateway_clients.hpp"

#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include <arpa/inet.h>

#include <cstdlib>
#include <random>

namespace punchgate {

namespace {

// UPnP error codes (UPnP IGD WANIPConnection:2, section 2.4).
constexpr int kInvalidAction = 401;
constexpr int kOptionalActionNotImplemented = 602;
constexpr int kNoSuchEntryInArray = 714;
constexpr int kConflictInMappingEntry = 718;
constexpr int kOnlyPermanentLeasesSupported = 725;
constexpr const char* kDescription = "punchgate";
constexpr int kRandomPortTries = 8;

std::string upnp_error(int code) {
  const char* text = strupnperror(code);
  return text ? fmt::format("{} ({})", text, code) : fmt::format("UPnP error {}", code);
}

MapOutcome failure(std::string why, bool port_taken = false) {
  MapOutcome o;
  o.error = std::move(why);
  o.port_taken = port_taken;
  return o;
}

}  // namespace

Result<std::unique_ptr<UpnpGateway>> UpnpGateway::discover(int delay_ms) {
  int err = 0;
  std::unique_ptr<UPNPDev, void (*)(UPNPDev*)> devices(
      upnpDiscover(delay_ms, nullptr, nullptr, UPNP_LOCAL_PORT_ANY, 0, 2, &err), freeUPNPDevlist);
  if (!devices) {
    if (err != UPNPDISCOVER_SUCCESS) return make_error("SSDP search failed (error {})", err);
    return make_error("no UPnP device answered an SSDP search within {} ms", delay_ms);
  }
  std::unique_ptr<UpnpGateway> gw(new UpnpGateway());
  char lan[INET6_ADDRSTRLEN] = {};
  // Fills urls_ whatever it returns but 0; the destructor frees them in every case.
  int r = UPNP_GetValidIGD(devices.get(), &gw->urls_, &gw->data_, lan, sizeof lan);
  switch (r) {
    case 1:
      break;
    case 2:
      return make_error("the UPnP gateway at {} reports its WAN link as not connected", gw->root_url());
    case 3:
      return make_error("UPnP devices answered but none is an internet gateway (first: {})", gw->root_url());
    default:
      return make_error("no internet gateway among the UPnP devices that answered");
  }
  gw->lan_addr_ = lan;
  return gw;
}

UpnpGateway::~UpnpGateway() { FreeUPNPUrls(&urls_); }

Result<std::string> UpnpGateway::external_ip() {
  char ip[64] = {};  // the call writes at most 16 bytes
  int r = UPNP_GetExternalIPAddress(urls_.controlURL, data_.first.servicetype, ip);
  if (r != UPNPCOMMAND_SUCCESS) return make_error("GetExternalIPAddress failed: {}", upnp_error(r));
  in_addr v4{};
  if (inet_pton(AF_INET, ip, &v4) != 1 || v4.s_addr == 0) {
    return make_error("the gateway reports no usable external address (\"{}\")", ip);
  }
  return std::string(ip);
}

int UpnpGateway::add_one(uint16_t external_port, uint16_t internal_port, const std::string& client,
                         const std::string& lease) {
  std::string ext = std::to_string(external_port), in = std::to_string(internal_port);
  return UPNP_AddPortMapping(urls_.controlURL, data_.first.servicetype, ext.c_str(), in.c_str(), client.c_str(),
                             kDescription, "UDP", nullptr, lease.c_str());
}

MapOutcome UpnpGateway::add(uint16_t internal_port, const std::string& client, uint16_t external_port,
                            uint32_t lifetime_s) {
  auto ip = external_ip();
  if (!ip) return failure(ip.error().message);
  MapOutcome ok;
  ok.ok = true;
  ok.external_ip = *ip;
  ok.lifetime_s = lifetime_s;
  std::string lease = std::to_string(lifetime_s);
  // One AddPortMapping, retried as permanent when the gateway only does permanent leases.
  auto add_port = [&](uint16_t port) {
    int r = add_one(port, internal_port, client, lease);
    if (r == kOnlyPermanentLeasesSupported && lease != "0") {
      lease = "0";
      ok.lifetime_s = 0;
      r = add_one(port, internal_port, client, lease);
    }
    return r;
  };

  if (external_port != 0) {
    int r = add_port(external_port);
    if (r == UPNPCOMMAND_SUCCESS) {
      ok.external_port = external_port;
      return ok;
    }
    return failure(fmt::format("AddPortMapping {} failed: {}", external_port, upnp_error(r)),
                   r == kConflictInMappingEntry);
  }

  // Any port: IGDv2 picks one itself (AddAnyPortMapping); IGDv1 has no such action, so try a
  // few random ports.
  std::string in = std::to_string(internal_port);
  char reserved[8] = {};
  int r = UPNP_AddAnyPortMapping(urls_.controlURL, data_.first.servicetype, in.c_str(), in.c_str(), client.c_str(),
                                 kDescription, "UDP", nullptr, lease.c_str(), reserved);
  if (r == kOnlyPermanentLeasesSupported) {
    lease = "0";
    ok.lifetime_s = 0;
    r = UPNP_AddAnyPortMapping(urls_.controlURL, data_.first.servicetype, in.c_str(), in.c_str(), client.c_str(),
                               kDescription, "UDP", nullptr, lease.c_str(), reserved);
  }
  if (r == UPNPCOMMAND_SUCCESS) {
    int port = std::atoi(reserved);
    if (port <= 0 || port > 65535) return failure(fmt::format("AddAnyPortMapping returned port \"{}\"", reserved));
    ok.external_port = static_cast<uint16_t>(port);
    return ok;
  }
  if (r != kInvalidAction && r != kOptionalActionNotImplemented) {
    return failure(fmt::format("AddAnyPortMapping failed: {}", upnp_error(r)));
  }
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(1024, 65535);
  for (int i = 0; i < kRandomPortTries; ++i) {
    auto port = static_cast<uint16_t>(pick(rng));
    r = add_port(port);
    if (r == UPNPCOMMAND_SUCCESS) {
      ok.external_port = port;
      return ok;
    }
    if (r != kConflictInMappingEntry) break;
  }
  return failure(fmt::format("no free external port: {}", upnp_error(r)));
}

MapOutcome UpnpGateway::remove(uint16_t external_port) {
  std::string ext = std::to_string(external_port);
  int r = UPNP_DeletePortMapping(urls_.controlURL, data_.first.servicetype, ext.c_str(), "UDP", nullptr);
  // Already gone (lease ended, gateway rebooted) is as good as removed.
  if (r != UPNPCOMMAND_SUCCESS && r != kNoSuchEntryInArray) {
    return failure(fmt::format("DeletePortMapping {} failed: {}", external_port, upnp_error(r)));
  }
  MapOutcome o;
  o.ok = true;
  return o;
}

}  // namespace punchgate
