#include "punchgate/transport/quic_transport.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/crypto/tls_certificate.hpp"
#include "transport/quic_endpoint.hpp"
#include "transport/quic_tls.hpp"

#include <arpa/inet.h>
#include <sodium.h>
#include <netdb.h>

namespace punchgate {

namespace {

Result<SockAddr> sockaddr_of(const QuicEndpointAddr& a) {
  if (a.is_dns) return make_error("address {} needs name resolution", a.host);
  return SockAddr::from_ip(a.host, a.port);
}

}  // namespace

QuicTransport::QuicTransport(uv_loop_t* loop, QuicTransportConfig config) : loop_(loop), config_(config) {}

QuicTransport::~QuicTransport() { shutdown("shutting down"); }

Result<std::unique_ptr<QuicTransport>> QuicTransport::create(uv_loop_t* loop, const Identity& identity,
                                                             QuicTransportConfig config) {
  std::unique_ptr<QuicTransport> t(new QuicTransport(loop, config));
  auto cert = TlsCertificate::generate(identity);
  if (!cert) return make_error("TLS certificate: {}", cert.error().message);
  t->cert_ = std::make_unique<TlsCertificate>(std::move(*cert));
  install_quic_verify_callback(*t->cert_);
  // Ed25519 signatures are deterministic: hashing one over a fixed label derives a secret that
  // only this identity can produce and that survives restarts.
  static constexpr char kLabel[] = "punchgate quic stateless reset secret";
  Bytes sig = identity.sign(kLabel);
  crypto_hash_sha256(t->reset_secret_, data_u8(sig), sig.size());
  return t;
}

Result<Multiaddr> QuicTransport::listen(const Multiaddr& addr) {
  auto ep_addr = quic_endpoint_of(addr);
  if (!ep_addr) return ep_addr.error();
  if (ep_addr->is_dns) return make_error("cannot listen on a DNS name: {}", addr.to_string());
  auto sa = sockaddr_of(*ep_addr);
  if (!sa) return sa.error();
  auto ep = QuicEndpoint::bind(*this, *sa);
  if (!ep) return ep.error();
  Multiaddr bound = (*ep)->local_multiaddr();
  endpoints_.push_back(std::move(*ep));
  return bound;
}

std::vector<Multiaddr> QuicTransport::listen_addrs() const {
  std::vector<Multiaddr> out;
  for (const auto& ep : endpoints_) out.push_back(ep->local_multiaddr());
  return out;
}

void QuicTransport::set_inbound_handler(std::function<void(ConnectionPtr)> cb) { inbound_ = std::move(cb); }

void QuicTransport::notify_inbound(ConnectionPtr c) {
  if (inbound_) {
    inbound_(std::move(c));
  } else {
    c->close("not accepting connections");
  }
}

Result<QuicEndpoint*> QuicTransport::endpoint_for_family(int family) {
  for (auto& ep : endpoints_) {
    if (ep->family() == family) return ep.get();
  }
  // No listener of that family: an ephemeral socket, kept for later dials of that family too.
  SockAddr any;
  if (family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&any.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_any;
    any.len = sizeof(sockaddr_in6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&any.storage);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    any.len = sizeof(sockaddr_in);
  }
  auto ep = QuicEndpoint::bind(*this, any);
  if (!ep) return ep.error();
  endpoints_.push_back(std::move(*ep));
  return endpoints_.back().get();
}

void QuicTransport::dial(const Multiaddr& addr, DialFn cb) {
  if (shut_down_) return cb(make_error("transport is shut down"));
  auto ep_addr = quic_endpoint_of(addr);
  if (!ep_addr) return cb(ep_addr.error());
  auto peer = addr.peer_id();
  if (!peer) return cb(make_error("multiaddr {} has no /p2p/ peer id to check", addr.to_string()));
  if (!ep_addr->is_dns) {
    auto sa = sockaddr_of(*ep_addr);
    if (!sa) return cb(sa.error());
    return dial_resolved(addr, *peer, sa->get(), std::move(cb));
  }
  PeerId expected = *peer;
  resolve_address(loop_, ep_addr->host, ep_addr->port, SOCK_DGRAM,
                  [this, addr, expected, cb = std::move(cb)](Result<SockAddr> sa) mutable {
                    if (!sa) return cb(make_error("cannot dial {}: {}", addr.to_string(), sa.error().message));
                    dial_resolved(addr, expected, sa->get(), std::move(cb));
                  },
                  ep_addr->family);
}

Status QuicTransport::send_datagram(const Multiaddr& addr, BytesView data) {
  if (shut_down_) return make_error("transport is shut down");
  auto ep_addr = quic_endpoint_of(addr);
  if (!ep_addr) return ep_addr.error();
  if (ep_addr->is_dns) return make_error("cannot punch towards a DNS name: {}", addr.to_string());
  auto sa = sockaddr_of(*ep_addr);
  if (!sa) return sa.error();
  auto ep = endpoint_for_family(sa->get()->sa_family);
  if (!ep) return ep.error();
  (*ep)->send(*sa, data_u8(data), data.size());
  return {};
}

Result<uint64_t> QuicTransport::dial_from_fresh_socket(const Multiaddr& addr, DialFn cb) {
  if (shut_down_) return make_error("transport is shut down");
  auto ep_addr = quic_endpoint_of(addr);
  if (!ep_addr) return ep_addr.error();
  auto peer = addr.peer_id();
  if (!peer) return make_error("multiaddr {} has no /p2p/ peer id to check", addr.to_string());
  if (ep_addr->is_dns) return make_error("cannot punch towards a DNS name: {}", addr.to_string());
  auto sa = sockaddr_of(*ep_addr);
  if (!sa) return sa.error();
  SockAddr any;
  any.storage.ss_family = static_cast<sa_family_t>(sa->family());
  any.len = sa->family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  auto ep = QuicEndpoint::bind(*this, any);
  if (!ep) return ep.error();
  uint64_t handle = next_fresh_++;
  QuicEndpoint* raw = ep->get();
  fresh_.emplace(handle, std::move(*ep));
  if (!fresh_reaper_) {
    fresh_reaper_ = std::make_unique<Timer>(loop_);
    fresh_reaper_->start(1000, 1000, [this] { reap_fresh(); });
  }
  raw->dial(*sa, *peer, [cb = std::move(cb)](Result<std::shared_ptr<QuicConnection>> r) {
    if (!r) return cb(r.error());
    cb(ConnectionPtr(*r));
  });
  return handle;
}

void QuicTransport::abort_fresh_dial(uint64_t handle) {
  auto it = fresh_.find(handle);
  if (it == fresh_.end() || it->second->handshaking_count() == 0) return;
  it->second->close_all("hole punch abandoned");
}

void QuicTransport::reap_fresh() {
  std::erase_if(fresh_, [](const auto& kv) { return kv.second->connection_count() == 0; });
}

void QuicTransport::dial_resolved(const Multiaddr& addr, const PeerId& peer, const sockaddr* sa, DialFn cb) {
  auto ep = endpoint_for_family(sa->sa_family);
  if (!ep) return cb(ep.error());
  spdlog::debug("dialing addr={}", addr.to_string());
  (*ep)->dial(SockAddr::from(sa), peer, [cb = std::move(cb)](Result<std::shared_ptr<QuicConnection>> r) {
    if (!r) return cb(r.error());
    cb(ConnectionPtr(*r));
  });
}

void QuicTransport::shutdown(const std::string& reason) {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& ep : endpoints_) ep->close_all(reason);
  for (auto& [h, ep] : fresh_) ep->close_all(reason);
  endpoints_.clear();
  fresh_.clear();
  if (fresh_reaper_) fresh_reaper_->stop();
}

}  // namespace punchgate
