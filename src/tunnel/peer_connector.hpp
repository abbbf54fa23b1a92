// Gets a connection to a peer for tunnels: reuses an open one, else dials the peer's known
// addresses in turn. Failures back off (doubling up to a cap); callers arriving during a backoff
// wait for the next attempt instead of hammering a peer that is down.
#pragma once

#include "punchgate/host/host.hpp"

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

namespace punchgate {

class PeerConnector {
 public:
  using ConnectFn = std::function<void(Result<ConnectionPtr>)>;
  static constexpr uint64_t kInitialBackoffMs = 250;
  static constexpr uint64_t kMaxBackoffMs = 15'000;

  explicit PeerConnector(Host& host);
  ~PeerConnector();
  void connect(const PeerId& peer, ConnectFn cb);

 private:
  struct PeerState;
  void attempt(const PeerId& peer);
  void try_addr(const PeerId& peer, std::vector<Multiaddr> addrs, size_t index, std::string last_error);
  void complete(const PeerId& peer, Result<ConnectionPtr> r);

  Host& host_;
  std::unordered_map<PeerId, std::unique_ptr<PeerState>> peers_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
