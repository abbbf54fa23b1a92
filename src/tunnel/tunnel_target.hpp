// Where a tunnel's connections go. A --tunnel names its peer; a --tunnel-by-name names a service
// and the target picks a provider found in the DHT, moving on to another when one fails.
#pragma once

#include "punchgate/host/host.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace punchgate {

class KadService;
class PeerConnector;

class TunnelTarget {
 public:
  using ConnectFn = std::function<void(Result<ConnectionPtr>)>;
  virtual ~TunnelTarget() = default;
  // A connection to the peer that should serve the next tunnelled connection.
  virtual void connect(ConnectFn cb) = 0;
  // Opening a tunnel on `peer` failed (stream, rejection): the next connect() may choose another.
  // True when it will (so retrying at once is worth it).
  virtual bool failed(const PeerId& peer) = 0;
  // For logs: the peer id, or "?" until a provider was chosen.
  virtual std::string peer_text() const = 0;
};

// --tunnel PEER:…: always that peer (PeerConnector finds and dials it, with backoff).
class FixedPeerTarget final : public TunnelTarget {
 public:
  FixedPeerTarget(PeerConnector& connector, PeerId peer) : connector_(connector), peer_(std::move(peer)) {}
  void connect(ConnectFn cb) override;
  bool failed(const PeerId&) override { return false; }
  std::string peer_text() const override { return peer_.to_base58(); }

 private:
  PeerConnector& connector_;
  PeerId peer_;
};

// --tunnel-by-name SVC@…: providers of /punchgate/svc/SVC from the DHT, connected ones first, then
// those with direct addresses; a provider that failed is tried last for a while.
class ServiceProviderTarget final : public TunnelTarget {
 public:
  static constexpr uint64_t kFailedPenaltyMs = 5 * 60'000;
  static constexpr uint64_t kLookupMaxAgeMs = 5 * 60'000;  // look up again after this, even if fine

  ServiceProviderTarget(Host& host, KadService* kad, PeerConnector& connector, std::string service);
  ~ServiceProviderTarget() override;
  void connect(ConnectFn cb) override;
  bool failed(const PeerId& peer) override;
  std::string peer_text() const override { return current_.empty() ? "?" : current_.to_base58(); }

 private:
  void lookup();
  void find_providers();
  void try_candidates(std::vector<PeerId> order, size_t index, std::string last_error);
  void complete(Result<ConnectionPtr> r);
  std::vector<PeerId> ordered_candidates() const;

  Host& host_;
  KadService* kad_;
  PeerConnector& connector_;
  std::string service_;
  PeerId current_;
  std::vector<PeerId> providers_;  // from the last lookup, in DHT order
  uint64_t looked_up_at_ = 0;
  bool have_lookup_ = false;
  bool busy_ = false;
  std::vector<ConnectFn> waiting_;
  std::map<PeerId, uint64_t> failed_at_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The DHT key a provider of `service` is announced under: the raw bytes "/punchgate/svc/NAME".
Bytes service_provider_key(const std::string& service);

}  // namespace punchgate
