// Everything tunnel-related on a node: the services it exposes and the local listeners of the
// tunnels it maps, sharing one connection per peer. Both can change at runtime (control socket).
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/tunnel/traffic_stats.hpp"
#include "punchgate/tunnel/tunnel_spec.hpp"

#include <memory>
#include <vector>

namespace punchgate {

class ExposedServices;
class KadService;
class PeerConnector;
class TcpTunnelListener;
class UdpTunnelListener;

struct TunnelInfo {
  TunnelSpec spec;  // peer empty: by name
  TrafficStats traffic;
};

struct ExposeInfo {
  ExposeSpec spec;
  TrafficStats traffic;
};

class TunnelManager {
 public:
  // `kad` (may be null) finds providers for by-name tunnels (TunnelSpec without a peer) and
  // addresses of peers we know none for, and carries the provider records of exposed services.
  TunnelManager(Host& host, KadService* kad, std::vector<ExposeSpec> exposes, std::vector<TunnelSpec> tunnels);
  ~TunnelManager();
  // Binds every local tunnel listener and announces the exposed services; an error names the
  // tunnel whose bind failed.
  Status start();
  void shutdown();
  PeerConnector& connector() { return *connector_; }

  // Runtime changes. Errors name the bad value (duplicate bind or name, bind failure, unknown).
  // Removing closes the listener or service together with its open tunnels.
  Status add_tunnel(const TunnelSpec& spec);
  Status remove_tunnel(const HostPort& bind, TunnelTransport transport);
  Status add_expose(const ExposeSpec& spec);
  Status remove_expose(const std::string& name);
  std::vector<TunnelInfo> tunnels() const;
  std::vector<ExposeInfo> exposes() const;

 private:
  Status bind_tunnel(const TunnelSpec& t);
  void announce(const ExposeSpec& e);

  Host& host_;
  KadService* kad_;
  std::vector<TunnelSpec> initial_tunnels_;
  std::unique_ptr<PeerConnector> connector_;
  std::unique_ptr<ExposedServices> exposed_;
  std::vector<std::unique_ptr<TcpTunnelListener>> tcp_;
  std::vector<std::unique_ptr<UdpTunnelListener>> udp_;
};

}  // namespace punchgate
