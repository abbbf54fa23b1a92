#include "kad/kad_query.hpp"

#include <algorithm>

namespace punchgate {

namespace {
// Candidates kept per query: enough for the k closest plus room to find closer ones.
size_t candidate_cap(const KadConfig& c) { return c.k * 8; }
}  // namespace

KadQuery::KadQuery(KadQueryId id_, KadQueryKind kind_, Bytes key_, uint64_t now_ms, const KadConfig& config)
    : id(id_),
      kind(kind_),
      key(std::move(key_)),
      target(KadKey::from_key(key)),
      deadline_ms(now_ms + config.query_timeout_ms),
      config_(config) {
  result.id = id;
  result.kind = kind;
  result.key = key;
}

void KadQuery::add_candidates(const std::vector<KadPeerInfo>& peers, size_t depth, const PeerId& self) {
  for (const KadPeerInfo& p : peers) {
    if (p.id.empty() || p.id == self) continue;
    if (auto it = distance_of_.find(p.id); it != distance_of_.end()) {
      // Known: only learn addresses we lacked (its state stays; a failed peer is not asked again).
      Candidate& c = candidates_[it->second];
      for (const Multiaddr& a : p.addrs) {
        if (c.info.addrs.size() >= 32) break;
        if (std::find(c.info.addrs.begin(), c.info.addrs.end(), a) == c.info.addrs.end()) c.info.addrs.push_back(a);
      }
      continue;
    }
    KadKey d = target.distance(KadKey::of_peer(p.id));
    if (candidates_.size() >= candidate_cap(config_)) {
      // Full: evict the farthest peer we have not asked yet, if it is farther than the newcomer.
      auto victim = candidates_.end();
      for (auto it = candidates_.rbegin(); it != candidates_.rend() && it->first > d; ++it) {
        if (it->second.state == PeerState::NotContacted) {
          victim = std::next(it).base();
          break;
        }
      }
      if (victim == candidates_.end()) continue;
      distance_of_.erase(victim->second.info.id);
      candidates_.erase(victim);
    }
    candidates_.emplace(d, Candidate{.info = p, .state = PeerState::NotContacted, .depth = depth, .sent_ms = 0});
    distance_of_.emplace(p.id, d);
  }
}

std::vector<KadPeerInfo> KadQuery::next_lookup_targets(uint64_t now_ms) {
  std::vector<KadPeerInfo> out;
  size_t seen_live = 0;  // non-failed peers passed, closest first
  for (auto& [d, c] : candidates_) {
    if (in_flight_ >= config_.alpha) break;
    if (c.state == PeerState::Failed) continue;
    if (seen_live++ >= config_.k) break;  // only the k closest live peers are worth asking
    if (c.state != PeerState::NotContacted) continue;
    c.state = PeerState::Waiting;
    c.sent_ms = now_ms;
    ++in_flight_;
    ++result.requests;
    result.rounds = std::max(result.rounds, c.depth + 1);
    out.push_back(c.info);
  }
  return out;
}

bool KadQuery::lookup_complete() const {
  size_t live = 0;
  for (const auto& [d, c] : candidates_) {
    if (c.state == PeerState::Failed) continue;
    if (c.state != PeerState::Succeeded) return false;
    if (++live >= config_.k) return true;
  }
  return in_flight_ == 0;  // fewer than k live peers exist and every one has answered
}

bool KadQuery::mark(const PeerId& peer, bool success) {
  auto it = distance_of_.find(peer);
  if (it == distance_of_.end()) return false;
  Candidate& c = candidates_[it->second];
  if (c.state != PeerState::Waiting) return false;
  c.state = success ? PeerState::Succeeded : PeerState::Failed;
  --in_flight_;
  return true;
}

std::vector<PeerId> KadQuery::expire(uint64_t now_ms) {
  std::vector<PeerId> out;
  for (auto& [d, c] : candidates_) {
    if (c.state == PeerState::Waiting && c.sent_ms + config_.request_timeout_ms <= now_ms) out.push_back(c.info.id);
  }
  for (auto& [peer, sent] : direct_) {
    if (sent + config_.request_timeout_ms <= now_ms) out.push_back(peer);
  }
  return out;
}

std::vector<KadPeerInfo> KadQuery::closest_succeeded(size_t n) const {
  std::vector<KadPeerInfo> out;
  for (const auto& [d, c] : candidates_) {
    if (out.size() >= n) break;
    if (c.state == PeerState::Succeeded) out.push_back(c.info);
  }
  return out;
}

const KadQuery::Candidate* KadQuery::candidate(const PeerId& peer) const {
  auto it = distance_of_.find(peer);
  return it == distance_of_.end() ? nullptr : &candidates_.at(it->second);
}

uint64_t KadQuery::next_deadline_ms() const {
  uint64_t t = deadline_ms;
  for (const auto& [d, c] : candidates_) {
    if (c.state == PeerState::Waiting) t = std::min(t, c.sent_ms + config_.request_timeout_ms);
  }
  for (const auto& [peer, sent] : direct_) t = std::min(t, sent + config_.request_timeout_ms);
  return t;
}

void KadQuery::start_direct(const std::vector<KadPeerInfo>& targets, uint64_t now_ms) {
  phase = Phase::Direct;
  for (const KadPeerInfo& t : targets) direct_.emplace(t.id, now_ms);
  result.requests += targets.size();
}

bool KadQuery::finish_direct(const PeerId& peer, bool success) {
  if (direct_.erase(peer) == 0) return false;
  if (success) ++result.succeeded;
  return true;
}

}  // namespace punchgate
