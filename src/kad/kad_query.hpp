// One iterative Kademlia query: the candidate set ordered by distance to the target, which
// peers were asked, answered or failed, and (for PUT_VALUE / ADD_PROVIDER / PING) the direct
// requests sent after the lookup. Kademlia owns the queries and turns their steps into requests.
#pragma once

#include "punchgate/kad/kademlia.hpp"

#include <map>
#include <set>

namespace punchgate {

class KadQuery {
 public:
  enum class PeerState { NotContacted, Waiting, Succeeded, Failed };
  struct Candidate {
    KadPeerInfo info;
    PeerState state = PeerState::NotContacted;
    size_t depth = 0;  // request/response steps from the seeds to this peer
    uint64_t sent_ms = 0;
  };
  enum class Phase { Lookup, Direct, Done };

  KadQuery(KadQueryId id, KadQueryKind kind, Bytes key, uint64_t now_ms, const KadConfig& config);

  // Adds peers learned from a response (or the seeds). Farther peers beyond the candidate cap
  // are dropped; peers already known keep their state.
  void add_candidates(const std::vector<KadPeerInfo>& peers, size_t depth, const PeerId& self);
  // Next peers to ask in the lookup phase (alpha in flight), marked Waiting.
  std::vector<KadPeerInfo> next_lookup_targets(uint64_t now_ms);
  // True once the k closest peers not known to have failed have all answered, or nothing is
  // left to ask and nothing is in flight.
  bool lookup_complete() const;
  // Marks a peer's outcome; false when the peer was not waiting (late or unknown answer).
  bool mark(const PeerId& peer, bool success);
  // Peers waiting longer than the request timeout; they are marked failed.
  std::vector<PeerId> expire(uint64_t now_ms);
  std::vector<KadPeerInfo> closest_succeeded(size_t n) const;
  const Candidate* candidate(const PeerId& peer) const;
  uint64_t next_deadline_ms() const;  // earliest request timeout or the query deadline

  // Direct phase: requests to specific peers (store, ping) after the lookup.
  void start_direct(const std::vector<KadPeerInfo>& targets, uint64_t now_ms);
  bool direct_pending(const PeerId& peer) const { return direct_.contains(peer); }
  bool finish_direct(const PeerId& peer, bool success);
  bool direct_done() const { return direct_.empty(); }

  KadQueryId id;
  KadQueryKind kind;
  Bytes key;
  KadKey target;
  Bytes value;  // PUT_VALUE payload
  uint64_t deadline_ms;
  Phase phase = Phase::Lookup;
  KadQueryResult result;
  std::set<PeerId> provider_ids;

 private:
  const KadConfig& config_;
  std::map<KadKey, Candidate> candidates_;  // by XOR distance to the target
  std::map<PeerId, KadKey> distance_of_;
  std::map<PeerId, uint64_t> direct_;  // peer -> sent_ms
  size_t in_flight_ = 0;
};

}  // namespace punchgate
