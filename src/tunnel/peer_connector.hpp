// Gets a connection to a peer for tunnels: reuses an open one, else dials the peer's known
// addresses in turn (asking the DHT for them when we know none, or none worked). Failures back off (doubling up to a cap); callers arriving during a backoff
// wait for the next attempt instead of hammering a peer that is down.
#pragma once

#include "punchgate/host/host.hpp"

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

namespace punchgate {

class KadService;

class PeerConnector {
 public:
  using ConnectFn = std::function<void(Result<ConnectionPtr>)>;
  static constexpr uint64_t kInitialBackoffMs = 250;
  static constexpr uint64_t kMaxBackoffMs = 15'000;

  // `kad` may be null (no DHT): then only addresses already known are dialed.
  PeerConnector(Host& host, KadService* kad);
  ~PeerConnector();
  void connect(const PeerId& peer, ConnectFn cb);

 private:
  struct PeerState;
  void attempt(const PeerId& peer, bool looked_up);
  void lookup(const PeerId& peer, std::string last_error);
  void find_in_dht(const PeerId& peer, std::string last_error);
  void try_addrs(const PeerId& peer, std::vector<Multiaddr> addrs, bool looked_up);
  void complete(const PeerId& peer, Result<ConnectionPtr> r);
  // Logs, once per connection, that the tunnel target is reached through a relay.
  void note_route(const PeerId& peer, const ConnectionPtr& c);

  Host& host_;
  KadService* kad_;
  std::unordered_map<PeerId, std::unique_ptr<PeerState>> peers_;
  std::unordered_map<PeerId, uint64_t> relayed_logged_;  // peer -> id of the connection logged
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
