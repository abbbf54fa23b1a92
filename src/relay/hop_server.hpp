// The bookkeeping of a circuit relay v2 HOP server (libp2p/specs relay/circuit-v2.md), without
// I/O: the caller reads HopMessages off /libp2p/circuit/relay/0.2.0/hop streams, dispatches on
// their type, passes RESERVE and CONNECT here, and acts on the answer (write the reply, open the
// STOP stream, splice, report the circuit's end). Checks that need the connection are the
// caller's too: go-libp2p refuses RESERVE and CONNECT arriving over a relayed connection with
// PERMISSION_DENIED.
#pragma once

#include "punchgate/crypto/identity.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"
#include "relay/circuit_message.hpp"
#include "relay/relay_limits.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace punchgate {

struct HopReserveResult {
  HopMessage reply;       // STATUS: OK with reservation and limit, or RESERVATION_REFUSED
  bool accepted = false;
  uint64_t expire = 0;    // unix seconds, when accepted
};

struct HopConnectAdmission {
  uint64_t circuit_id;  // pass to HopServer::circuit_closed when the circuit ends
  PeerId src;
  PeerId dst;
  std::optional<CircuitLimit> limit;  // sent in STOP CONNECT to dst and in the OK reply to src
};

struct HopConnectResult {
  std::optional<HopConnectAdmission> admitted;  // set: go open STOP to dst
  std::optional<HopMessage> refusal;            // set: send this STATUS reply to src and close
};

class HopServer {
 public:
  // Keeps a copy of the identity (it signs vouchers), so the caller's may go away.
  HopServer(const Identity& relay_identity, RelayLimits limits);

  // A RESERVE from `peer`. `relay_addrs`: the relay's public addresses without /p2p; each gets
  // /p2p/<relay id> in Reservation.addrs (a trailing /p2p already there is replaced, relayed
  // addresses are skipped, and addresses are dropped from the end until the reply fits in
  // kMaxCircuitMessageSize). A renewal is always accepted, even at the cap, and only moves the
  // expiry; a new peer at the cap first reclaims expired slots (those peers are then not reported
  // by expire()), else is refused with RESERVATION_REFUSED.
  HopReserveResult reserve(const PeerId& peer, const std::vector<Multiaddr>& relay_addrs, uint64_t now_unix);

  // A CONNECT from `src` naming msg.peer. Refusals, checked in this order: MALFORMED_MESSAGE (no
  // peer or not a peer id), PERMISSION_DENIED (dst == src), NO_RESERVATION (dst has no live
  // reservation), RESOURCE_LIMIT_EXCEEDED (max_circuits, or src or dst at max_circuits_per_peer).
  // Otherwise the circuit counts against the totals and both peers until circuit_closed().
  HopConnectResult connect(const PeerId& src, const HopMessage& msg, uint64_t now_unix);

  // The circuit ended (STOP refused, either side closed, limit hit): releases its counts.
  // Unknown ids are ignored, so calling it twice is harmless.
  void circuit_closed(uint64_t circuit_id);

  // Drops reservations whose expiry <= now_unix; returns the peers dropped.
  std::vector<PeerId> expire(uint64_t now_unix);

  // The peer's connection to the relay is gone: its reservation is dropped, as go-libp2p does.
  // Returns whether it held one (expired but not yet dropped counts). Its circuits stay counted
  // until their own circuit_closed().
  bool peer_disconnected(const PeerId& peer);

  bool has_reservation(const PeerId& peer, uint64_t now_unix) const;
  // Reservations held, including expired ones expire() has not dropped yet.
  size_t reservation_count() const { return reservations_.size(); }
  size_t circuit_count() const { return circuits_.size(); }
  // Open circuits with `peer` at either end.
  size_t circuit_count(const PeerId& peer) const;
  const RelayLimits& limits() const { return limits_; }

 private:
  struct Circuit {
    PeerId src;
    PeerId dst;
  };

  void release_circuit_of(const PeerId& peer);

  Identity relay_;
  RelayLimits limits_;
  std::unordered_map<PeerId, uint64_t> reservations_;  // peer -> expiry (unix seconds)
  std::unordered_map<uint64_t, Circuit> circuits_;
  std::unordered_map<PeerId, size_t> circuits_per_peer_;  // only peers with open circuits
  uint64_t next_circuit_id_ = 1;
};

// Per-circuit byte budget for splicing, each direction separately (the spec's Limit.data).
class CircuitBudget {
 public:
  static constexpr int kSrcToDst = 0;
  static constexpr int kDstToSrc = 1;

  explicit CircuitBudget(uint64_t data_limit_per_direction) : limit_(data_limit_per_direction) {}  // 0 = unlimited

  // How many of `n` bytes may still pass in `direction` (kSrcToDst or kDstToSrc); records them.
  // Any other direction gets 0.
  size_t take(int direction, size_t n);
  // True once either direction has used its whole budget (never when unlimited): the relay then
  // closes the circuit, as go-libp2p does.
  bool exhausted() const;
  uint64_t bytes(int direction) const;
  uint64_t limit() const { return limit_; }

 private:
  uint64_t limit_;
  std::array<uint64_t, 2> used_{};
};

}  // namespace punchgate
