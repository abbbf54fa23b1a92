#include "autonat/autonat_client.hpp"

#include <algorithm>

namespace punchgate {

const char* to_string(Reachability r) {
  switch (r) {
    case Reachability::Public: return "public";
    case Reachability::Private: return "private";
    case Reachability::Unknown: break;
  }
  return "unknown";
}

AutonatEvidence interpret_response(BytesView message, const std::vector<Multiaddr>& asked) {
  AutonatEvidence e;
  auto msg = AutonatMessage::decode(message);
  if (!msg) {
    e.detail = "malformed response: " + msg.error().message;
    return e;
  }
  if (msg->type != AutonatType::DialResponse || !msg->dial_response) {
    e.detail = "the answer is not a DIAL_RESPONSE";
    return e;
  }
  const AutonatDialResponse& r = *msg->dial_response;
  if (!r.status) {
    e.detail = "DIAL_RESPONSE without a status";
    return e;
  }
  e.status = r.status;
  e.detail = r.status_text.value_or("");
  if (*r.status == AutonatStatus::DialError) {
    e.kind = AutonatEvidence::Kind::Private;
    return e;
  }
  if (*r.status != AutonatStatus::Ok) return e;
  if (r.addr) {
    auto addr = Multiaddr::from_bytes(*r.addr);
    if (!addr) {
      e.detail = "OK naming an unreadable address";
      return e;
    }
    Multiaddr bare = addr->without_peer_id();
    auto same = [&](const Multiaddr& a) { return a.without_peer_id() == bare; };
    if (std::none_of(asked.begin(), asked.end(), same)) {
      e.detail = "OK naming an address we did not ask about: " + bare.to_string();
      return e;
    }
    e.addr = std::move(bare);
  }
  e.kind = AutonatEvidence::Kind::Public;
  return e;
}

// ---- ReachabilityTracker ----

ReachabilityTracker::ReachabilityTracker(ReachabilityConfig config) : config_(config) {
  config_.max_confidence = std::max(config_.max_confidence, 0);
  config_.quorum = std::max<size_t>(config_.quorum, 1);
}

bool ReachabilityTracker::record(const PeerId& server, const AutonatEvidence& e) {
  if (e.kind == AutonatEvidence::Kind::None) return false;
  const Reachability said = e.kind == AutonatEvidence::Kind::Public ? Reachability::Public : Reachability::Private;
  if (said == state_) {
    confidence_ = std::min(confidence_ + 1, config_.max_confidence);
    pending_ = Reachability::Unknown;
    pending_servers_.clear();
    pending_addr_.reset();
    if (said == Reachability::Public && e.addr && e.addr != addr_) {
      addr_ = e.addr;
      return true;
    }
    return false;
  }
  if (pending_ != said) {
    pending_ = said;
    pending_servers_.clear();
    pending_addr_.reset();
  }
  pending_servers_.insert(server);
  if (e.addr) pending_addr_ = e.addr;
  if (confidence_ > 0) {
    --confidence_;
    return false;
  }
  if (pending_servers_.size() < config_.quorum) return false;
  state_ = said;
  confidence_ = 0;
  addr_ = said == Reachability::Public ? pending_addr_ : std::nullopt;
  pending_ = Reachability::Unknown;
  pending_servers_.clear();
  pending_addr_.reset();
  return true;
}

// ---- ProbeScheduler ----

ProbeScheduler::ProbeScheduler(ProbeScheduleConfig config) : config_(config) {}

bool ProbeScheduler::may_ask(const PeerId& server, uint64_t now_ms) const {
  if (auto held = held_until_.find(server); held != held_until_.end() && now_ms < held->second) return false;
  auto it = last_asked_.find(server);
  return it == last_asked_.end() || it->second + config_.server_throttle_ms <= now_ms;
}

void ProbeScheduler::hold(const PeerId& server, uint64_t now_ms) {
  held_until_[server] = now_ms + config_.refresh_interval_ms;
}

std::vector<PeerId> ProbeScheduler::pick(std::vector<PeerId> eligible, uint64_t now_ms) {
  // Past a refresh interval, "asked long ago" is as good as "never asked"; forgetting such
  // entries keeps the map as small as the set of recently asked servers.
  const uint64_t forget_ms = config_.refresh_interval_ms + config_.server_throttle_ms;
  std::erase_if(last_asked_, [&](const auto& kv) { return kv.second + forget_ms <= now_ms; });
  std::erase_if(held_until_, [&](const auto& kv) { return kv.second <= now_ms; });
  std::sort(eligible.begin(), eligible.end());
  eligible.erase(std::unique(eligible.begin(), eligible.end()), eligible.end());
  std::erase_if(eligible, [&](const PeerId& p) { return !may_ask(p, now_ms); });
  auto asked_at = [&](const PeerId& p) {
    auto it = last_asked_.find(p);
    return it == last_asked_.end() ? uint64_t{0} : it->second + 1;  // never asked sorts first
  };
  // Least recently asked first, so rounds rotate through many servers; ties by id.
  std::stable_sort(eligible.begin(), eligible.end(),
                   [&](const PeerId& a, const PeerId& b) { return asked_at(a) < asked_at(b); });
  if (eligible.size() > config_.servers_per_round) eligible.resize(config_.servers_per_round);
  for (const PeerId& p : eligible) last_asked_[p] = now_ms;
  return eligible;
}

uint64_t ProbeScheduler::interval(Reachability r, int confidence, int max_confidence) const {
  if (r == Reachability::Unknown || confidence < max_confidence) return config_.retry_interval_ms;
  return config_.refresh_interval_ms;
}

}  // namespace punchgate
