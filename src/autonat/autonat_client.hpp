// The AutoNAT v1 client's decisions, without IO: what a server's answer says about us, how the
// answers of several servers add up to a reachability, and when to ask whom.
//
// Reachability is a confidence counter, as go-libp2p and rust-libp2p keep it, with one addition:
// leaving a state (Unknown included) takes agreeing answers from `quorum` distinct servers, so
// one server, lying or confused, can never flip us on its own.
// - An answer agreeing with the current state raises confidence (up to max_confidence) and
//   forgets any disagreeing answers collected so far.
// - A disagreeing answer first spends confidence; once it is used up, the state flips when
//   `quorum` distinct servers have disagreed the same way since the last agreeing answer.
// With the defaults: Unknown -> Public/Private after two servers agree; a confident state flips
// after four disagreeing answers in a row, from at least two servers.
// Only OK (Public) and E_DIAL_ERROR (Private) are evidence; refusals, bad requests, internal
// errors, timeouts and broken streams say nothing about us and change nothing.
#pragma once

#include "autonat/autonat_message.hpp"
#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace punchgate {

enum class Reachability { Unknown, Public, Private };
const char* to_string(Reachability r);  // "unknown", "public", "private"

struct AutonatEvidence {
  enum class Kind { None, Public, Private };
  Kind kind = Kind::None;
  std::optional<Multiaddr> addr;         // Public: the address the server reached, when it named one
  std::optional<AutonatStatus> status;   // the answer's status, when it had a usable one
  std::string detail;                    // the server's status text, or why the answer counts for nothing
};

// What a DIAL_RESPONSE (protobuf, no prefix) to our DIAL listing `asked` says. OK naming an
// address we did not ask about is not believed.
AutonatEvidence interpret_response(BytesView message, const std::vector<Multiaddr>& asked);

struct ReachabilityConfig {
  int max_confidence = 3;
  size_t quorum = 2;
};

class ReachabilityTracker {
 public:
  explicit ReachabilityTracker(ReachabilityConfig config = {});

  // Adds one server's answer. True when reachability() or public_addr() changed.
  bool record(const PeerId& server, const AutonatEvidence& e);

  Reachability reachability() const { return state_; }
  // Public: the address a server reached most recently.
  const std::optional<Multiaddr>& public_addr() const { return addr_; }
  int confidence() const { return confidence_; }
  const ReachabilityConfig& config() const { return config_; }

 private:
  ReachabilityConfig config_;
  Reachability state_ = Reachability::Unknown;
  int confidence_ = 0;
  std::optional<Multiaddr> addr_;
  // Disagreeing answers since the last agreeing one: which state, from whom, latest address.
  Reachability pending_ = Reachability::Unknown;
  std::set<PeerId> pending_servers_;
  std::optional<Multiaddr> pending_addr_;
};

struct ProbeScheduleConfig {
  uint64_t boot_delay_ms = 5'000;          // after start, or after a new server shows up while unsure
  uint64_t retry_interval_ms = 60'000;     // Unknown, or below full confidence
  uint64_t refresh_interval_ms = 300'000;  // at full confidence
  uint64_t server_throttle_ms = 60'000;    // one server is asked at most once per this
  size_t servers_per_round = 3;
};

class ProbeScheduler {
 public:
  explicit ProbeScheduler(ProbeScheduleConfig config = {});

  // Of the servers we could ask now, those to ask this round: not asked within the throttle,
  // never-asked first, then the least recently asked; at most servers_per_round. Marks them.
  std::vector<PeerId> pick(std::vector<PeerId> eligible, uint64_t now_ms);
  // True when `server` may be asked at now_ms.
  bool may_ask(const PeerId& server, uint64_t now_ms) const;
  // The server's answer said nothing (refused, failed, none): ask it again only after a refresh
  // interval, so a server that always refuses (a LAN peer, say) is not asked every minute.
  void hold(const PeerId& server, uint64_t now_ms);
  // Delay until the next round.
  uint64_t interval(Reachability r, int confidence, int max_confidence) const;
  const ProbeScheduleConfig& config() const { return config_; }

 private:
  ProbeScheduleConfig config_;
  std::unordered_map<PeerId, uint64_t> last_asked_;
  std::unordered_map<PeerId, uint64_t> held_until_;
};

}  // namespace punchgate
