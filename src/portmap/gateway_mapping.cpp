#include "portmap/gateway_mapping.hpp"

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#define ENABLE_STRNATPMPERR 1  // declares strnatpmperr(), which the Debian library exports
#include <natpmp.h>
#include <sys/select.h>

#include <chrono>
#include <memory>
#include <string>

namespace punchgate {

namespace {

// NAT-PMP retries with doubling timeouts for over a minute; a gateway that speaks it answers a
// LAN round trip at once, so two seconds is plenty.
constexpr auto kNatPmpWait = std::chrono::milliseconds(2000);
constexpr int kUpnpDiscoverMs = 2000;
constexpr const char* kDescription = "punchgate";

struct NatPmp {
  natpmp_t n{};
  bool open = false;
  ~NatPmp() {
    if (open) closenatpmp(&n);
  }
};

// Waits for the answer to the request just sent.
Result<natpmpresp_t> natpmp_await(natpmp_t& n) {
  auto deadline = std::chrono::steady_clock::now() + kNatPmpWait;
  natpmpresp_t resp{};
  int r = NATPMP_TRYAGAIN;
  while (r == NATPMP_TRYAGAIN) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return make_error("no NAT-PMP answer from the gateway");
    timeval tv{};
    getnatpmprequesttimeout(&n, &tv);
    long want = tv.tv_sec * 1'000'000L + tv.tv_usec;
    if (want > left.count() || want < 0) want = left.count();
    tv.tv_sec = want / 1'000'000L;
    tv.tv_usec = want % 1'000'000L;
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(n.s, &fds);
    select(n.s + 1, &fds, nullptr, nullptr, &tv);
    r = readnatpmpresponseorretry(&n, &resp);
  }
  if (r < 0) return make_error("NAT-PMP: {}", strnatpmperr(r));
  return resp;
}

Result<GatewayMapping> natpmp_map(uint16_t internal_port, uint16_t external_port, uint32_t lifetime_s) {
  NatPmp pmp;
  if (int r = initnatpmp(&pmp.n, 0, 0); r < 0) return make_error("NAT-PMP: {}", strnatpmperr(r));
  pmp.open = true;
  if (int r = sendpublicaddressrequest(&pmp.n); r < 0) return make_error("NAT-PMP: {}", strnatpmperr(r));
  auto addr = natpmp_await(pmp.n);
  if (!addr) return addr.error();
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr->pnu.publicaddress.addr, ip, sizeof ip);
  if (int r = sendnewportmappingrequest(&pmp.n, NATPMP_PROTOCOL_UDP, internal_port, external_port, lifetime_s); r < 0) {
    return make_error("NAT-PMP: {}", strnatpmperr(r));
  }
  auto map = natpmp_await(pmp.n);
  if (!map) return map.error();
  GatewayMapping m;
  m.protocol = MappingProtocol::NatPmp;
  m.external_ip = ip;
  m.internal_port = internal_port;
  m.external_port = map->pnu.newportmapping.mappedpublicport;
  m.lifetime_s = map->pnu.newportmapping.lifetime;
  if (lifetime_s > 0 && m.lifetime_s == 0) return make_error("NAT-PMP: the gateway granted no lifetime");
  return m;
}

struct UpnpSession {
  UPNPDev* devices = nullptr;
  UPNPUrls urls{};
  IGDdatas data{};
  bool have_urls = false;
  char lan_addr[64] = {};
  ~UpnpSession() {
    if (have_urls) FreeUPNPUrls(&urls);
    if (devices) freeUPNPDevlist(devices);
  }
};

Result<GatewayMapping> upnp_add(const std::string& control_url, const std::string& service_type,
                                const std::string& lan_addr, uint16_t internal_port, uint16_t external_port,
                                uint32_t lifetime_s) {
  std::string ext = std::to_string(external_port), in = std::to_string(internal_port);
  std::string lease = std::to_string(lifetime_s);
  int r = UPNP_AddPortMapping(control_url.c_str(), service_type.c_str(), ext.c_str(), in.c_str(), lan_addr.c_str(),
                              kDescription, "UDP", nullptr, lease.c_str());
  if (r == 725 && lifetime_s != 0) {  // OnlyPermanentLeasesSupported
    lifetime_s = 0;
    r = UPNP_AddPortMapping(control_url.c_str(), service_type.c_str(), ext.c_str(), in.c_str(), lan_addr.c_str(),
                            kDescription, "UDP", nullptr, "0");
  }
  if (r != 0) return make_error("UPnP AddPortMapping: {} ({})", strupnperror(r), r);
  char ip[40] = {};
  if (UPNP_GetExternalIPAddress(control_url.c_str(), service_type.c_str(), ip) != 0 || ip[0] == '\0') {
    return make_error("UPnP: the gateway did not tell its external address");
  }
  GatewayMapping m;
  m.protocol = MappingProtocol::Upnp;
  m.external_ip = ip;
  m.internal_port = internal_port;
  m.external_port = external_port;
  m.lifetime_s = lifetime_s;
  m.upnp_control_url = control_url;
  m.upnp_service_type = service_type;
  return m;
}

Result<GatewayMapping> upnp_map(uint16_t internal_port, uint32_t lifetime_s) {
  UpnpSession s;
  int error = 0;
  s.devices = upnpDiscover(kUpnpDiscoverMs, nullptr, nullptr, 0, 0, 2, &error);
  if (!s.devices) return make_error("no UPnP gateway answered discovery");
  int igd = UPNP_GetValidIGD(s.devices, &s.urls, &s.data, s.lan_addr, sizeof s.lan_addr);
  s.have_urls = igd != 0;
  // 1: connected IGD; 2: an IGD that says it is not connected (some report that wrongly).
  if (igd != 1 && igd != 2) return make_error("no UPnP Internet gateway device found");
  return upnp_add(s.urls.controlURL, s.data.first.servicetype, s.lan_addr, internal_port, internal_port, lifetime_s);
}

}  // namespace

const char* to_string(MappingProtocol p) { return p == MappingProtocol::NatPmp ? "natpmp" : "upnp"; }

Result<GatewayMapping> map_udp_port(uint16_t internal_port, uint32_t lifetime_s) {
  auto pmp = natpmp_map(internal_port, internal_port, lifetime_s);
  if (pmp) return pmp;
  auto upnp = upnp_map(internal_port, lifetime_s);
  if (upnp) return upnp;
  return make_error("{}; {}", pmp.error().message, upnp.error().message);
}

Result<GatewayMapping> renew_mapping(const GatewayMapping& m) {
  if (m.protocol == MappingProtocol::NatPmp) return natpmp_map(m.internal_port, m.external_port, m.lifetime_s);
  // The LAN address UPnP forwards to is ours as the gateway saw it at discovery: ask again.
  return upnp_map(m.internal_port, m.lifetime_s);
}

Status remove_mapping(const GatewayMapping& m) {
  if (m.protocol == MappingProtocol::NatPmp) {
    // Lifetime 0 deletes (RFC 6886 section 3.4).
    auto r = natpmp_map(m.internal_port, 0, 0);
    if (!r) return r.error();
    return {};
  }
  std::string ext = std::to_string(m.external_port);
  int r = UPNP_DeletePortMapping(m.upnp_control_url.c_str(), m.upnp_service_type.c_str(), ext.c_str(), "UDP", nullptr);
  if (r != 0) return make_error("UPnP DeletePortMapping: {} ({})", strupnperror(r), r);
  return {};
}

}  // namespace punchgate
