// The provider side: serves --expose'd services to peers on /punchgate/tunnel/1.0.0 (TCP) and
// /punchgate/udp/1.0.0 (UDP), connecting each accepted tunnel to the local target.
#pragma once

#include "punchgate/host/host.hpp"
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
  ExposedServices(Host& host, std::vector<ExposeSpec> exposes);
  ~ExposedServices();
  void shutdown();
  size_t active_tunnels() const { return bridges_.size() + udp_flows_.size(); }

 private:
  void on_tcp_stream(NegotiatedStream ns);
  void on_udp_stream(NegotiatedStream ns);
  const ExposeSpec* find(const std::string& name, TunnelTransport t) const;
  void reject(const NegotiatedStream& ns, const std::string& service, const std::string& reason);
  void accept_tcp(NegotiatedStream ns, const ExposeSpec& spec, Bytes rest);

  Host& host_;
  std::vector<ExposeSpec> exposes_;
  std::set<std::shared_ptr<TcpBridge>> bridges_;
  std::set<std::shared_ptr<UdpServiceFlow>> udp_flows_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
