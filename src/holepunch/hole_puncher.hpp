// Hole punching on the node: runs the DCUtR exchange (dcutr_exchange) over relayed connections
// and turns its plans into UDP packets and QUIC dials from our listening socket.
//
// B, the side that accepted a relayed connection, starts: CONNECT/SYNC measure the relayed round
// trip; A dials B's addresses on SYNC, B waits half the round trip and then sends random UDP
// packets to A's addresses every 10-200 ms, so A's QUIC packets find B's NAT open and B ends up
// the QUIC server. Beyond the spec, B also dials A's addresses: when only B has
// endpoint-dependent mapping, A cannot predict B's port but B's own dial gets through A's NAT.
// Both sides dialing may leave two direct connections; the host keeps one (Host::prune_redundant).
// Up to three attempts; afterwards the tunnel stays on the relay and B tries again later.
//
// Hard NATs (beyond the spec): when exactly one side has endpoint-dependent mapping (we judge
// ours from what peers observed, the peer's from the ports it offers), a plain punch cannot work
// against a port-restricted peer. Each attempt then adds, after a head start for the plain punch,
// a birthday punch: the dependent side dials from many fresh sockets (many new mappings), the
// other side sends probes to many random ports of the dependent side's IP (opening its own NAT to
// them); one hit lets that socket's QUIC handshake through. Bounded in sockets, probes and time.
#pragma once

#include "holepunch/nat_mapping.hpp"
#include "holepunch/punch_session.hpp"
#include "punchgate/host/host.hpp"

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace punchgate {

class Timer;

struct HolePunchConfig {
  bool enabled = true;
  bool hard_nat = true;                   // birthday punch when one side is endpoint-dependent
  uint64_t retry_after_ms = 60'000;       // after a failed round, while still relayed (doubles)
  uint64_t max_retry_after_ms = 1'800'000;
  PunchParams punch;                      // timeouts and hard-NAT bounds of one round
};

class HolePuncher {
 public:
  HolePuncher(Host& host, HolePunchConfig config);
  ~HolePuncher();
  HolePuncher(const HolePuncher&) = delete;
  HolePuncher& operator=(const HolePuncher&) = delete;

  // How we reach `peer` and why, one line for status: "direct (hole punched, attempt 1)",
  // "relayed (hole punch failed: …)", …
  std::string describe(const PeerId& peer) const;
  // The addresses a punch offers the other side: observed ones (most reported first), then our
  // listen addresses.
  std::vector<Multiaddr> candidate_addrs() const;
  // Our NAT's mapping behaviour as observed so far.
  const NatMappingVerdict& nat_mapping() const { return mapping_; }

 private:
  struct Session;
  void on_connection(const ConnectionPtr& c, bool opened);
  void on_identify();
  void start_initiator(const ConnectionPtr& relayed);
  // Opens a /libp2p/dcutr stream on the session's relayed connection and feeds StreamReady (or
  // StreamEnded when it cannot).
  void open_stream(const PeerId& peer);
  void serve(NegotiatedStream ns);
  Session& new_session(const PeerId& peer, PunchSession::Role role);
  void watch_stream(const PeerId& peer);
  // Feeds an event to the peer's session and carries out the commands.
  void feed(const PeerId& peer, const PunchEvent& ev);
  void execute(Session& s, std::vector<PunchCommand> commands);
  void spray(const PeerId& peer);
  void send_probes(const PeerId& peer);
  void dial_fresh(Session& s, const PunchCommand& c);
  void abort_fresh(Session& s);
  void finish(Session& s);
  void schedule_retry(Session& s);
  Session* find(const PeerId& peer);

  Host& host_;
  HolePunchConfig config_;
  std::unordered_map<PeerId, std::unique_ptr<Session>> sessions_;
  NatMappingVerdict mapping_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
