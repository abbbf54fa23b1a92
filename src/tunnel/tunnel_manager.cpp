#include "punchgate/tunnel/tunnel_manager.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/kad/kad_service.hpp"
#include "tunnel/exposed_services.hpp"
#include "tunnel/peer_connector.hpp"
#include "tunnel/tunnel_target.hpp"
#include "tunnel/tcp_tunnel_listener.hpp"
#include "tunnel/udp_tunnel_listener.hpp"

#include <algorithm>

namespace punchgate {

TunnelManager::TunnelManager(Host& host, KadService* kad, std::vector<ExposeSpec> exposes,
                             std::vector<TunnelSpec> tunnels)
    : host_(host),
      kad_(kad),
      initial_tunnels_(std::move(tunnels)),
      connector_(std::make_unique<PeerConnector>(host, kad)),
      exposed_(std::make_unique<ExposedServices>(host, std::move(exposes))) {}

TunnelManager::~TunnelManager() { shutdown(); }

Status TunnelManager::start() {
  for (const ExposeInfo& e : exposes()) announce(e.spec);
  for (const TunnelSpec& t : initial_tunnels_) PG_TRY(bind_tunnel(t));
  return {};
}

void TunnelManager::announce(const ExposeSpec& e) {
  spdlog::info("exposing service={} target={}", e.name, e.to_string());
  if (kad_) kad_->provide(service_provider_key(e.name), nullptr);
}

Status TunnelManager::bind_tunnel(const TunnelSpec& t) {
  std::unique_ptr<TunnelTarget> target;
  if (t.peer.empty()) {
    target = std::make_unique<ServiceProviderTarget>(host_, kad_, *connector_, t.service);
  } else {
    target = std::make_unique<FixedPeerTarget>(*connector_, t.peer);
  }
  if (t.transport == TunnelTransport::Tcp) {
    auto l = std::make_unique<TcpTunnelListener>(host_, std::move(target), t);
    PG_TRY(l->listen());
    tcp_.push_back(std::move(l));
  } else {
    auto l = std::make_unique<UdpTunnelListener>(host_, std::move(target), t);
    PG_TRY(l->listen());
    udp_.push_back(std::move(l));
  }
  return {};
}

void TunnelManager::shutdown() {
  for (auto& l : tcp_) l->shutdown();
  for (auto& l : udp_) l->shutdown();
  if (exposed_) exposed_->shutdown();
}

Status TunnelManager::add_tunnel(const TunnelSpec& spec) {
  std::vector<TunnelSpec> all;
  for (const TunnelInfo& t : tunnels()) all.push_back(t.spec);
  all.push_back(spec);
  PG_TRY(validate_tunnels(all));
  return bind_tunnel(spec);
}

Status TunnelManager::remove_tunnel(const HostPort& bind, TunnelTransport transport) {
  auto same = [&](const auto& l) { return l->spec().bind == bind; };
  bool removed = false;
  if (transport == TunnelTransport::Tcp) {
    auto it = std::find_if(tcp_.begin(), tcp_.end(), same);
    if (it != tcp_.end()) {
      (*it)->shutdown();
      tcp_.erase(it);
      removed = true;
    }
  } else {
    auto it = std::find_if(udp_.begin(), udp_.end(), same);
    if (it != udp_.end()) {
      (*it)->shutdown();
      udp_.erase(it);
      removed = true;
    }
  }
  const char* suffix = transport == TunnelTransport::Udp ? "/udp" : "";
  if (!removed) return make_error("no tunnel is bound to {}{}", bind.to_string(), suffix);
  spdlog::info("tunnel removed bind={}{}", bind.to_string(), suffix);
  return {};
}

Status TunnelManager::add_expose(const ExposeSpec& spec) {
  PG_TRY(exposed_->add(spec));
  announce(spec);
  return {};
}

Status TunnelManager::remove_expose(const std::string& name) {
  PG_TRY(exposed_->remove(name));
  // Existing provider records expire on their own (TTL); we only stop re-announcing.
  if (kad_) kad_->stop_providing(service_provider_key(name));
  spdlog::info("expose removed service={}", name);
  return {};
}

std::vector<TunnelInfo> TunnelManager::tunnels() const {
  std::vector<TunnelInfo> out;
  for (const auto& l : tcp_) out.push_back({l->spec(), l->stats()});
  for (const auto& l : udp_) out.push_back({l->spec(), l->stats()});
  return out;
}

std::vector<ExposeInfo> TunnelManager::exposes() const {
  std::vector<ExposeInfo> out;
  for (auto& e : exposed_->list()) out.push_back({std::move(e.spec), e.traffic});
  return out;
}

}  // namespace punchgate
