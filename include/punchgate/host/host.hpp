// Host: our node on the network. Owns the transport, keeps connections by peer, routes inbound
// streams to protocol handlers after multistream-select, and runs identify and ping.
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/host/peer_store.hpp"
#include "punchgate/transport/connection.hpp"
#include "punchgate/transport/quic_transport.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace punchgate {

struct NegotiatedStream {
  ConnectionPtr conn;
  StreamPtr stream;
  std::string protocol;
  Bytes leftover;  // application bytes that arrived with the negotiation
};

struct HostConfig {
  std::vector<Multiaddr> listen;
  std::vector<Multiaddr> bootstrap;   // dialed at start and redialed with backoff
  uint64_t ping_interval_ms = 15'000;  // periodic ping of every connection (0: off)
  std::vector<PeerId> allow;           // non-empty: inbound connections from others are refused
  QuicTransportConfig quic;
};

class IdentifyService;
class PingService;
class Timer;

class Host {
 public:
  using StreamHandler = std::function<void(NegotiatedStream)>;
  using ConnectionObserver = std::function<void(const ConnectionPtr&, bool opened, const std::string& reason)>;
  using DialCallback = std::function<void(Result<ConnectionPtr>)>;
  // Dials a /p2p-circuit address (the relay layer provides it).
  using CircuitDialer = std::function<void(const Multiaddr& addr, DialCallback cb)>;

  static Result<std::unique_ptr<Host>> create(uv_loop_t* loop, Identity identity, HostConfig config);
  ~Host();

  // Binds the listen addresses, logs them, and starts dialing bootstrap peers.
  Status start();
  // Closes every connection with `reason`; the loop can then finish.
  void shutdown(const std::string& reason);

  const Identity& identity() const { return identity_; }
  const PeerId& peer_id() const { return identity_.peer_id(); }
  uv_loop_t* loop() const { return loop_; }
  // Addresses we listen on, unspecified binds expanded to interface addresses.
  std::vector<Multiaddr> listen_addrs() const;
  // What we tell peers (identify, DHT): gateway-mapped and listen addresses, then relayed ones.
  std::vector<Multiaddr> advertised_addrs() const;
  // Our /p2p-circuit addresses from relay reservations; peers learn of the change by identify push.
  void set_relay_addrs(std::vector<Multiaddr> addrs);
  const std::vector<Multiaddr>& relay_addrs() const { return relay_addrs_; }
  // Addresses the home gateway forwards to us (UPnP / NAT-PMP port mapping); advertised likewise.
  void set_mapped_addrs(std::vector<Multiaddr> addrs);
  PeerStore& peer_store() { return peers_; }

  void set_stream_handler(const std::string& protocol, StreamHandler handler);
  // Stops serving `protocol` (inbound negotiation refuses it); connected peers learn by identify push.
  void remove_stream_handler(const std::string& protocol);
  std::vector<std::string> protocols() const;
  void add_connection_observer(ConnectionObserver obs) { observers_.push_back(std::move(obs)); }

  // Dials the /p2p/ address, reusing an open connection to that peer. /p2p-circuit addresses go
  // to the circuit dialer.
  void dial(const Multiaddr& addr, DialCallback cb);
  void set_circuit_dialer(CircuitDialer d) { circuit_dialer_ = std::move(d); }
  // Circuit addresses through relays we know, to try when a peer's own addresses fail.
  using RelayRoutes = std::function<std::vector<Multiaddr>(const PeerId& peer)>;
  void set_relay_routes(RelayRoutes r) { relay_routes_ = std::move(r); }
  std::vector<Multiaddr> relay_routes(const PeerId& peer) const {
    return relay_routes_ ? relay_routes_(peer) : std::vector<Multiaddr>{};
  }
  // Dials `peer` at all of `addrs` at once (direct ones at once, relayed ones once every direct
  // one failed or after kRelayHeadStartMs, whichever is first); the first connection up answers.
  // Later ones are kept (a direct one is preferred over the relayed one that won).
  void dial_any(const PeerId& peer, std::vector<Multiaddr> addrs, DialCallback cb);
  static constexpr uint64_t kRelayHeadStartMs = 1500;
  // A fresh direct QUIC dial that never reuses an open connection (hole punching).
  void dial_direct(const Multiaddr& addr, DialCallback cb);
  // A direct dial from a socket of its own (see QuicTransport::dial_from_fresh_socket).
  Result<uint64_t> dial_from_fresh_socket(const Multiaddr& addr, DialCallback cb);
  void abort_fresh_dial(uint64_t handle);
  // A dial from a socket of its own whose connection the host does not take: no identify, no
  // observers, inbound streams refused, absent from connections(). AutoNAT dial-backs use it:
  // a new flow through the peer's NAT, and our connection to the peer stays as it was. The
  // caller closes the connection; abort_fresh_dial() gives the dial up.
  Result<uint64_t> dial_detached(const Multiaddr& addr, DialCallback cb);
  // One raw UDP datagram from our listening socket (hole punching).
  Status send_datagram(const Multiaddr& addr, BytesView data);
  // Takes a connection made outside the transport (an inbound relayed one) like any other.
  void adopt_connection(const ConnectionPtr& c) { add_connection(c); }
  // An open connection to `peer`, a direct one when there is one.
  ConnectionPtr connection_to(const PeerId& peer) const;
  std::vector<ConnectionPtr> connections() const;
  // Opens a stream on `conn` and negotiates the first of `protocols` the peer supports.
  void open_stream(const ConnectionPtr& conn, std::vector<std::string> protocols,
                   std::function<void(Result<NegotiatedStream>)> cb);

  IdentifyService& identify() { return *identify_; }
  PingService& ping() { return *ping_; }

 private:
  Host(uv_loop_t* loop, Identity identity, HostConfig config);
  void add_connection(const ConnectionPtr& c);
  void on_inbound_stream(const ConnectionPtr& c, StreamPtr s);
  void schedule_bootstrap(size_t index);
  // Closes connections made redundant by a preferred one once they carry no stream.
  void prune_redundant();

  uv_loop_t* loop_;
  Identity identity_;
  HostConfig config_;
  std::unique_ptr<QuicTransport> transport_;
  PeerStore peers_;
  std::map<std::string, StreamHandler> handlers_;
  std::unordered_map<PeerId, std::vector<ConnectionPtr>> conns_;
  std::vector<ConnectionObserver> observers_;
  CircuitDialer circuit_dialer_;
  RelayRoutes relay_routes_;
  std::vector<Multiaddr> relay_addrs_;
  std::vector<Multiaddr> mapped_addrs_;
  // Dials in flight by peer: later callers for the same peer wait for it instead of racing it.
  std::unordered_map<PeerId, std::vector<std::function<void(Result<ConnectionPtr>)>>> dialing_;
  std::unique_ptr<IdentifyService> identify_;
  std::unique_ptr<PingService> ping_;
  struct Bootstrap {
    Multiaddr addr;
    uint64_t backoff_ms = 1000;
    bool connected = false;
    bool dialing = false;
    std::unique_ptr<Timer> retry;
  };
  std::vector<Bootstrap> bootstrap_;
  bool shutting_down_ = false;
  std::unique_ptr<Timer> prune_timer_;
  std::unordered_map<uint64_t, uint64_t> redundant_since_;  // connection id -> uv_now() first seen
};

}  // namespace punchgate
