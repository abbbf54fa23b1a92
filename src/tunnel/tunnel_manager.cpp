#include "punchgate/tunnel/tunnel_manager.hpp"

#include "punchgate/core/log.hpp"
#include "tunnel/exposed_services.hpp"
#include "tunnel/peer_connector.hpp"
#include "tunnel/tunnel_target.hpp"
#include "tunnel/tcp_tunnel_listener.hpp"
#include "tunnel/udp_tunnel_listener.hpp"

namespace punchgate {

TunnelManager::TunnelManager(Host& host, KadService* kad, std::vector<ExposeSpec> exposes,
                             std::vector<TunnelSpec> tunnels)
    : host_(host),
      kad_(kad),
      tunnels_(std::move(tunnels)),
      connector_(std::make_unique<PeerConnector>(host, kad)),
      exposed_(std::make_unique<ExposedServices>(host, std::move(exposes))) {}

TunnelManager::~TunnelManager() { shutdown(); }

Status TunnelManager::start() {
  for (const TunnelSpec& t : tunnels_) {
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
  }
  return {};
}

void TunnelManager::shutdown() {
  for (auto& l : tcp_) l->shutdown();
  for (auto& l : udp_) l->shutdown();
  if (exposed_) exposed_->shutdown();
}

}  // namespace punchgate
