#include "punchgate/tunnel/tunnel_manager.hpp"

#include "punchgate/core/log.hpp"
#include "tunnel/exposed_services.hpp"
#include "tunnel/peer_connector.hpp"
#include "tunnel/tcp_tunnel_listener.hpp"
#include "tunnel/udp_tunnel_listener.hpp"

namespace punchgate {

TunnelManager::TunnelManager(Host& host, std::vector<ExposeSpec> exposes, std::vector<TunnelSpec> tunnels)
    : host_(host),
      tunnels_(std::move(tunnels)),
      connector_(std::make_unique<PeerConnector>(host)),
      exposed_(std::make_unique<ExposedServices>(host, std::move(exposes))) {}

TunnelManager::~TunnelManager() { shutdown(); }

Status TunnelManager::start() {
  for (const TunnelSpec& t : tunnels_) {
    if (t.transport == TunnelTransport::Tcp) {
      auto l = std::make_unique<TcpTunnelListener>(host_, *connector_, t);
      PG_TRY(l->listen());
      tcp_.push_back(std::move(l));
    } else {
      auto l = std::make_unique<UdpTunnelListener>(host_, *connector_, t);
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
