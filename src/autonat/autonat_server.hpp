// The AutoNAT v1 server's decisions, without IO: which requests to serve and which of the
// requested addresses to dial back, and the answer once the dial-backs are over.
//
// A dial-back makes us send packets wherever a request points, so a request is only served
// (libp2p/specs autonat/README.md leaves the policy to us; these follow go-libp2p):
// - over a direct connection (through a relay we would see the relay, not the requester);
// - for the peer that asks (PeerInfo.id must be the connection's peer);
// - to addresses on the IP the request came from (nobody can aim us at a third party), that
//   are /ip4|ip6/…/udp/…/quic-v1 (what we can dial), not relayed, public (unless configured
//   otherwise), not one of our own IPs, at most max_dial_addrs of them;
// - within rate limits per peer and overall, and a cap on dial-backs in flight.
#pragma once

#include "autonat/autonat_message.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace punchgate {

struct AutonatServerConfig {
  size_t max_dial_addrs = 4;          // addresses dialed per request
  size_t max_in_flight = 4;           // requests being dialed back at once
  size_t max_per_window = 30;         // admitted requests per window, all peers
  size_t max_per_peer_window = 3;     // admitted requests per window, one peer
  uint64_t window_ms = 60'000;
  bool allow_private_ips = false;     // also dial loopback/private/link-local IPs (private networks)
};

struct AutonatRequestContext {
  PeerId requester;                  // the connection's authenticated peer
  Multiaddr observed;                // the connection's remote address
  bool relayed = false;
  std::vector<Multiaddr> own_addrs;  // our listen addresses: their IPs are never dialed
};

struct AutonatAdmission {
  // Set when the request is answered at once (refused or bad); nothing is dialed then.
  std::optional<AutonatMessage> answer;
  std::string reason;                // why it was refused (also in the answer's statusText)
  std::vector<Multiaddr> dial;       // admitted: where to dial back (no /p2p/ part)
  std::vector<std::pair<std::string, std::string>> skipped;  // requested address (text) and why not
  uint64_t job = 0;                  // admitted: hand back to finish()
};

class AutonatServer {
 public:
  explicit AutonatServer(AutonatServerConfig config = {});

  // Judges one request message (protobuf, without its length prefix). An admitted request holds
  // a slot until finish(job).
  AutonatAdmission admit(const AutonatRequestContext& ctx, BytesView message, uint64_t now_ms);
  void finish(uint64_t job);

  size_t in_flight() const { return in_flight_.size(); }
  const AutonatServerConfig& config() const { return config_; }

 private:
  void prune(uint64_t now_ms);

  AutonatServerConfig config_;
  std::set<uint64_t> in_flight_;
  uint64_t next_job_ = 1;
  std::deque<uint64_t> admitted_;  // times of admitted requests in the window, oldest first
  std::unordered_map<PeerId, std::deque<uint64_t>> admitted_by_peer_;
};

// The dial-backs of one admitted request, all started at once. The first connection answers OK
// with its address; when every one failed, E_DIAL_ERROR, or E_INTERNAL_ERROR when none could
// even be started on our side. Once decided, later reports are ignored.
class DialBackTally {
 public:
  explicit DialBackTally(std::vector<Multiaddr> addrs);

  std::optional<AutonatMessage> on_connected(const Multiaddr& addr);
  // `local`: the dial could not start here (no socket), which says nothing about the peer.
  std::optional<AutonatMessage> on_failed(const Multiaddr& addr, const std::string& error, bool local);
  std::optional<AutonatMessage> on_timeout();
  bool decided() const { return decided_; }
  // Addresses still being dialed.
  const std::vector<Multiaddr>& pending() const { return pending_; }

 private:
  bool take(const Multiaddr& addr);

  std::vector<Multiaddr> pending_;
  size_t dial_errors_ = 0;
  std::string last_error_;
  bool decided_ = false;
};

}  // namespace punchgate
