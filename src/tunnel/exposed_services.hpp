// The provider side: serves --expose'd services to peers on /punchgate/tunnel/1.0.0 (TCP) and
// /punchgate/udp/1.0.0 (UDP), connecting each accepted tunnel to the local target.
#pragma once

#include "punchgate/host/host.hpp"
#include "punchgate/tunnel/traffic_stats.hpp"
#include "punchgate/tunnel/tunnel_spec.hpp"
#include "tunnel/tcp_bridge.hpp"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace punchgate {

inline constexpr std::string_view kUdpTunnelProtocol = "/punchgate/udp/1.0.0";

class UdpServiceFlow;

class ExposedServices {
 public:
  struct Info {
    ExposeSpec spec;
    TrafficStats traffic;
  };

  ExposedServices(Host& host, std::vector<ExposeSpec> exposes);
  ~ExposedServices();
  void shutdown();
  size_t active_tunnels() const;
  // Runtime changes (control socket). A name is unique across TCP and UDP; removing a service
  // also closes its open tunnels.
  Status add(const ExposeSpec& spec);
  Status remove(const std::string& name);
  std::vector<Info> list() const;

 private:
  struct Service {
    ExposeSpec spec;
    std::set<std::shared_ptr<TcpBridge>> bridges;
    std::set<std::shared_ptr<UdpServiceFlow>> udp_flows;
    TrafficStats finished;  // tunnels already closed
  };

  void on_tcp_stream(NegotiatedStream ns);
  void on_udp_stream(NegotiatedStream ns);
  Service* find(const std::string& name, TunnelTransport t);
  void reject(const NegotiatedStream& ns, const std::string& service, const std::string& reason);
  void accept_tcp(NegotiatedStream ns, const ExposeSpec& spec, Bytes rest);
  static void close_tunnels(Service& s, const std::string& reason);

  Host& host_;
  std::map<std::string, Service> services_;  // by name
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
