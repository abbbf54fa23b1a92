// NAT-PMP through libnatpmp, bounded by our own deadline and waiting with poll() (libnatpmp's
// examples use select(), which breaks on descriptors past FD_SETSIZE in a busy node).
#include "portmap/gateway_clients.hpp"

#define ENABLE_STRNATPMPERR
#include <natpmp.h>

#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <chrono>

namespace punchgate {

namespace {

using Clock = std::chrono::steady_clock;

MapOutcome failure(std::string why) {
  MapOutcome o;
  o.error = std::move(why);
  return o;
}

class NatPmpSession {
 public:
  NatPmpSession() = default;
  ~NatPmpSession() {
    if (open_) closenatpmp(&n_);
  }
  NatPmpSession(const NatPmpSession&) = delete;
  NatPmpSession& operator=(const NatPmpSession&) = delete;

  Status open() {
    int r = initnatpmp(&n_, 0, 0);
    if (r < 0) return make_error("cannot reach a default gateway: {}", strnatpmperr(r));
    open_ = true;
    return {};
  }

  std::string gateway() const {
    in_addr a{};
    a.s_addr = n_.gateway;
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
  }

  natpmp_t* get() { return &n_; }

  // Waits for the answer to the request just sent (libnatpmp resends on its own schedule).
  Result<natpmpresp_t> await(int sent, Clock::time_point deadline) {
    if (sent < 0) return make_error("cannot send to gateway {}: {}", gateway(), strnatpmperr(sent));
    for (;;) {
      natpmpresp_t resp{};
      int r = readnatpmpresponseorretry(&n_, &resp);
      if (r == 0) return resp;
      if (r != NATPMP_TRYAGAIN) return make_error("gateway {}: {}", gateway(), strnatpmperr(r));
      timeval tv{};
      getnatpmprequesttimeout(&n_, &tv);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return make_error("gateway {} did not answer NAT-PMP in time", gateway());
      int64_t retry_ms = int64_t{tv.tv_sec} * 1000 + tv.tv_usec / 1000;
      pollfd p{n_.s, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(retry_ms, 1, left)));
    }
  }

 private:
  natpmp_t n_{};
  bool open_ = false;
};

}  // namespace

MapOutcome natpmp_map(uint16_t internal_port, uint16_t external_port, uint32_t lifetime_s, uint64_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  NatPmpSession s;
  if (auto st = s.open(); !st) return failure(st.error().message);
  auto pub = s.await(sendpublicaddressrequest(s.get()), deadline);
  if (!pub) return failure(pub.error().message);
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &pub->pnu.publicaddress.addr, ip, sizeof ip);
  auto map = s.await(sendnewportmappingrequest(s.get(), NATPMP_PROTOCOL_UDP, internal_port, external_port, lifetime_s),
                     deadline);
  if (!map) return failure(map.error().message);
  if (map->pnu.newportmapping.lifetime == 0 || map->pnu.newportmapping.mappedpublicport == 0) {
    return failure("gateway " + s.gateway() + " granted no mapping");
  }
  MapOutcome o;
  o.ok = true;
  o.external_ip = ip;
  o.external_port = map->pnu.newportmapping.mappedpublicport;
  o.lifetime_s = map->pnu.newportmapping.lifetime;
  return o;
}

MapOutcome natpmp_unmap(uint16_t internal_port, uint64_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  NatPmpSession s;
  if (auto st = s.open(); !st) return failure(st.error().message);
  // RFC 6886 3.4: lifetime 0 and suggested external port 0 delete the mapping.
  auto r = s.await(sendnewportmappingrequest(s.get(), NATPMP_PROTOCOL_UDP, internal_port, 0, 0), deadline);
  if (!r) return failure(r.error().message);
  MapOutcome o;
  o.ok = true;
  return o;
}

}  // namespace punchgate
