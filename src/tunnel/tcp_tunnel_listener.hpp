// Consumer side of a --tunnel PEER:SVC@BIND: a local TCP listener; each accepted connection gets
// its own stream to the peer's service (all sharing one connection to the peer).
#pragma once

#include "punchgate/core/sockaddr.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/tunnel/traffic_stats.hpp"
#include "punchgate/tunnel/tunnel_spec.hpp"
#include "tunnel/tunnel_target.hpp"
#include "tunnel/tcp_bridge.hpp"

#include <memory>
#include <set>

namespace punchgate {

class TcpTunnelListener {
 public:
  TcpTunnelListener(Host& host, std::unique_ptr<TunnelTarget> target, TunnelSpec spec);
  ~TcpTunnelListener();
  Status listen();
  void shutdown();
  const TunnelSpec& spec() const { return spec_; }
  TrafficStats stats() const;

 private:
  void on_accept();
  // Tries per accepted connection: a dead connection or provider gets replaced by a fresh
  // connection or the next provider, a bounded number of times.
  static constexpr int kMaxTunnelAttempts = 3;
  void open_tunnel(std::shared_ptr<UvHandle<uv_tcp_t>> client, int attempt);

  Host& host_;
  std::unique_ptr<TunnelTarget> target_;
  TunnelSpec spec_;
  UvHandle<uv_tcp_t> server_;
  std::set<std::shared_ptr<TcpBridge>> bridges_;
  TrafficStats finished_;  // connections already closed
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
