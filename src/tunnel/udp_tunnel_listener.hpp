// Consumer side of a --tunnel PEER:SVC@BIND/udp: a local UDP socket. Each local client address is
// its own flow (one stream to the peer), so replies go back to the sender that asked. Idle flows
// expire after kUdpFlowIdleMs.
#pragma once

#include "punchgate/core/sockaddr.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/tunnel/traffic_stats.hpp"
#include "punchgate/tunnel/tunnel_spec.hpp"
#include "tunnel/tunnel_target.hpp"

#include <deque>
#include <memory>
#include <unordered_map>

namespace punchgate {

class UdpTunnelListener {
 public:
  static constexpr size_t kMaxQueuedDatagrams = 64;  // per flow, while its stream opens
  static constexpr size_t kMaxFlows = 4096;

  UdpTunnelListener(Host& host, std::unique_ptr<TunnelTarget> target, TunnelSpec spec);
  ~UdpTunnelListener();
  Status listen();
  void shutdown();
  const TunnelSpec& spec() const { return spec_; }
  TrafficStats stats() const;

 private:
  struct Flow;
  void on_datagram(const SockAddr& from, BytesView d);
  void open_flow(const SockAddr& from, const std::shared_ptr<Flow>& flow);
  void on_stream_data(const SockAddr& from, Flow& flow, BytesView d);
  void expire_idle();
  void retire(const Flow& f);  // adds a closing flow's bytes to finished_

  Host& host_;
  std::unique_ptr<TunnelTarget> target_;
  TunnelSpec spec_;
  UvHandle<uv_udp_t> udp_;
  Timer sweep_;
  std::unordered_map<SockAddr, std::shared_ptr<Flow>, SockAddrHash> flows_;
  TrafficStats finished_;  // flows already expired or replaced
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
