// The client side of circuit relay v2: holds reservations on relays (a private node keeps up to
// RelayConfig::target_reservations, renews them before they expire and reserves again when a
// relay comes back), advertises the resulting /p2p-circuit addresses, dials peers through relays
// (the host's circuit dialer) and accepts circuits relays open to us (STOP). Relayed connections
// are MuxedConnections handed to the host like any other.
#pragma once

#include "punchgate/host/host.hpp"
#include "relay/relay_config.hpp"

#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace punchgate {

class Timer;

struct RelayReservationInfo {
  PeerId relay;
  uint64_t expire = 0;               // unix seconds
  std::vector<Multiaddr> addrs;      // our addresses through this relay
};

class RelayClient {
 public:
  // `reserving`: whether to hold reservations from the start (autonat/relay_roles decides).
  RelayClient(Host& host, RelayConfig config, bool reserving);
  ~RelayClient();

  // Starts reserving on the connected relays, or lets every reservation go (no renewals, circuit
  // addresses withdrawn; the relay drops the slot at expiry). Dialing through relays and accepting
  // circuits go on either way.
  void set_reserving(bool on);
  bool reserving() const { return reserves_; }

  std::vector<RelayReservationInfo> reservations() const;
  // <relay>/p2p-circuit/p2p/<peer> through every relay we are directly connected to that offers
  // hop: routes to try when no direct address of `peer` works.
  std::vector<Multiaddr> routes_via_relays(const PeerId& peer) const;

 private:
  struct RelayState;

  void dial_circuit(const Multiaddr& addr, Host::DialCallback cb);
  void on_stop(NegotiatedStream ns);
  void consider(const PeerId& relay);
  void reserve(const PeerId& relay, const ConnectionPtr& conn);
  void reservation_failed(const PeerId& relay, const std::string& error);
  void reservation_lost(const PeerId& relay, const std::string& why);
  void publish_addrs();
  bool wants_relay(const PeerId& relay) const;
  size_t active_count() const;

  Host& host_;
  RelayConfig config_;
  bool reserves_;
  std::map<PeerId, std::unique_ptr<RelayState>> relays_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
