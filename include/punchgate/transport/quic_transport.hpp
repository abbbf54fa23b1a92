// The QUIC transport: listens on /ip4|ip6/…/udp/PORT/quic-v1 addresses (one UDP socket each,
// shared by every inbound and outbound connection on it) and dials peers by multiaddr.
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/transport/connection.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace punchgate {

class QuicEndpoint;
class Timer;
class TlsCertificate;

struct QuicTransportConfig {
  uint64_t idle_timeout_ms = 30'000;
  uint64_t keep_alive_ms = 10'000;
  uint64_t handshake_timeout_ms = 10'000;
};

class QuicTransport {
 public:
  using DialFn = std::function<void(Result<ConnectionPtr>)>;

  static Result<std::unique_ptr<QuicTransport>> create(uv_loop_t* loop, const Identity& identity,
                                                       QuicTransportConfig config = {});
  ~QuicTransport();

  // Binds a UDP socket; returns the address actually bound (port 0 resolved).
  Result<Multiaddr> listen(const Multiaddr& addr);
  // Dials a /…/udp/P/quic-v1/p2p/ID address (the /p2p/ part is required: the peer is checked).
  // Uses a listening socket of the same family, so the peer sees our listening port.
  void dial(const Multiaddr& addr, DialFn cb);
  void set_inbound_handler(std::function<void(ConnectionPtr)> cb);
  // Sends one raw UDP datagram from the listening socket of the address's family (hole punching:
  // opens our NAT's mapping towards `addr`, exactly as our QUIC packets to it will leave).
  Status send_datagram(const Multiaddr& addr, BytesView data);
  // Dials from a new UDP socket on an ephemeral port instead of the listening one: each such dial
  // gets a NAT mapping of its own (birthday-style punching through endpoint-dependent NATs). The
  // socket lives as long as its connection. Returns a handle for abort_fresh_dial().
  Result<uint64_t> dial_from_fresh_socket(const Multiaddr& addr, DialFn cb);
  // Gives up a fresh-socket dial still handshaking (its callback gets an error); no-op otherwise.
  void abort_fresh_dial(uint64_t handle);
  std::vector<Multiaddr> listen_addrs() const;
  // Closes every connection with `reason` and stops all sockets.
  void shutdown(const std::string& reason);

  uv_loop_t* loop() const { return loop_; }
  const QuicTransportConfig& config() const { return config_; }
  const TlsCertificate& certificate() const { return *cert_; }
  void notify_inbound(ConnectionPtr c);
  // Stable across restarts with the same identity, so a restarted node's stateless resets are
  // recognised by peers that still hold connections to its previous run.
  const uint8_t* reset_secret() const { return reset_secret_; }

 private:
  QuicTransport(uv_loop_t* loop, QuicTransportConfig config);
  Result<QuicEndpoint*> endpoint_for_family(int family);
  void dial_resolved(const Multiaddr& addr, const PeerId& peer, const sockaddr* sa, DialFn cb);

  uv_loop_t* loop_;
  QuicTransportConfig config_;
  std::unique_ptr<TlsCertificate> cert_;
  std::vector<std::unique_ptr<QuicEndpoint>> endpoints_;
  // Fresh-socket dials by handle; a socket is dropped once it has no connection left.
  std::map<uint64_t, std::unique_ptr<QuicEndpoint>> fresh_;
  uint64_t next_fresh_ = 1;
  std::unique_ptr<Timer> fresh_reaper_;
  void reap_fresh();
  std::function<void(ConnectionPtr)> inbound_;
  bool shut_down_ = false;
  uint8_t reset_secret_[32] = {};
};

}  // namespace punchgate
