// Everything tunnel-related on a node: the services it exposes and the local listeners of the
// tunnels it maps, sharing one connection per peer.
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/tunnel/tunnel_spec.hpp"

#include <memory>
#include <vector>

namespace punchgate {

class ExposedServices;
class KadService;
class PeerConnector;
class TcpTunnelListener;
class UdpTunnelListener;

class TunnelManager {
 public:
  // `kad` (may be null) finds providers for by-name tunnels (TunnelSpec without a peer) and
  // addresses of peers we know none for; exposed services are announced there by the caller.
  TunnelManager(Host& host, KadService* kad, std::vector<ExposeSpec> exposes, std::vector<TunnelSpec> tunnels);
  ~TunnelManager();
  // Binds every local tunnel listener; an error names the tunnel whose bind failed.
  Status start();
  void shutdown();
  PeerConnector& connector() { return *connector_; }

 private:
  Host& host_;
  KadService* kad_;
  std::vector<TunnelSpec> tunnels_;
  std::unique_ptr<PeerConnector> connector_;
  std::unique_ptr<ExposedServices> exposed_;
  std::vector<std::unique_ptr<TcpTunnelListener>> tcp_;
  std::vector<std::unique_ptr<UdpTunnelListener>> udp_;
};

}  // namespace punchgate
