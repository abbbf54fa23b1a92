#include "punchgate/kad/kademlia.hpp"

#include "kad/kad_query.hpp"

#include <algorithm>
#include <cstring>

namespace punchgate {

const char* to_string(KadQueryKind k) {
  switch (k) {
    case KadQueryKind::FindNode: return "find_node";
    case KadQueryKind::GetProviders: return "get_providers";
    case KadQueryKind::GetValue: return "get_value";
    case KadQueryKind::PutValue: return "put_value";
    case KadQueryKind::AddProvider: return "add_provider";
    case KadQueryKind::Bootstrap: return "bootstrap";
    case KadQueryKind::Ping: return "ping";
  }
  return "unknown";
}

Kademlia::Kademlia(PeerId self, KadConfig config, uint64_t now_ms, uint64_t seed)
    : self_(std::move(self)),
      self_key_(KadKey::of_peer(self_)),
      config_(config),
      table_(self_, config.k),
      store_(config.store_limits),
      rng_state_(seed ^ 0x9e3779b97f4a7c15ULL),
      next_refresh_ms_(now_ms + config.bucket_refresh_ms) {}

Kademlia::~Kademlia() = default;

uint64_t Kademlia::next_random() {
  // splitmix64: deterministic for a seed (the simulation replays), good enough for bucket keys.
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// --- routing table --------------------------------------------------------------------------

void Kademlia::on_peer_seen(const KadPeerInfo& peer, uint64_t now_ms) {
  if (peer.id == self_) return;
  RoutingTable::UpdateResult r = table_.update(peer, now_ms);
  if (r.outcome != RoutingTable::Outcome::Pending || !r.ping) return;
  // The bucket is full: ask its oldest entry whether it is still there before replacing it.
  for (const auto& [id, q] : queries_) {
    if (q->kind == KadQueryKind::Ping && q->direct_pending(r.ping->id)) return;  // already asked
  }
  KadQueryId id = next_query_++;
  auto q = std::make_unique<KadQuery>(id, KadQueryKind::Ping, r.ping->id.bytes(), now_ms, config_);
  send_direct(*q, {*r.ping}, now_ms);
  queries_.emplace(id, std::move(q));
}

void Kademlia::on_peer_unreachable(const PeerId& peer) { table_.remove(peer); }

// --- inbound requests -----------------------------------------------------------------------

KadPeer Kademlia::to_wire(const KadPeerInfo& p) const {
  KadPeer out;
  out.id = p.id.bytes();
  for (const Multiaddr& a : p.addrs) {
    if (out.addrs.size() >= kMaxKadAddrsPerPeer) break;
    out.addrs.push_back(a.to_bytes());
  }
  return out;
}

std::vector<KadPeerInfo> Kademlia::parse_peers(const std::vector<KadPeer>& peers) const {
  std::vector<KadPeerInfo> out;
  for (const KadPeer& p : peers) {
    auto id = PeerId::from_bytes(p.id);
    if (!id) continue;  // one bad entry does not spoil the rest
    KadPeerInfo info{.id = *id, .addrs = {}};
    for (const Bytes& b : p.addrs) {
      auto m = Multiaddr::from_bytes(b);
      if (m) info.addrs.push_back(m->without_peer_id());
    }
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::optional<KadMessage>> Kademlia::handle_request(const KadPeerInfo& from, const KadMessage& request,
                                                           uint64_t now_ms) {
  if (!config_.server) return make_error("kad client mode: requests are not served");
  KadMessage resp;
  resp.type = request.type;
  resp.key = request.key;
  auto closer = [&] {
    std::vector<KadPeerInfo> peers = table_.closest(KadKey::from_key(request.key), config_.k + 1);
    for (const KadPeerInfo& p : peers) {
      if (p.id == from.id || resp.closer_peers.size() >= config_.k) continue;  // it knows itself
      resp.closer_peers.push_back(to_wire(p));
    }
  };
  switch (request.type) {
    case KadMessageType::Ping:
      return std::optional<KadMessage>(std::move(resp));
    case KadMessageType::FindNode:
      if (request.key.empty()) return make_error("FIND_NODE without a key");
      closer();
      return std::optional<KadMessage>(std::move(resp));
    case KadMessageType::GetValue: {
      if (request.key.empty()) return make_error("GET_VALUE without a key");
      if (auto rec = store_.get_record(request.key, now_ms)) {
        resp.record = KadRecord{.key = request.key, .value = rec->value, .time_received = {}};
      }
      closer();
      return std::optional<KadMessage>(std::move(resp));
    }
    case KadMessageType::PutValue: {
      if (!request.record) return make_error("PUT_VALUE without a record");
      if (request.record->key != request.key) return make_error("PUT_VALUE record key differs from message key");
      if (request.key.empty()) return make_error("PUT_VALUE without a key");
      PG_TRY(store_.put_record(request.key, request.record->value, now_ms, config_.record_ttl_ms));
      resp.record = request.record;  // the spec's acknowledgement: echo the request
      return std::optional<KadMessage>(std::move(resp));
    }
    case KadMessageType::AddProvider: {
      if (request.key.empty()) return make_error("ADD_PROVIDER without a key");
      size_t taken = 0;
      for (const KadPeerInfo& p : parse_peers(request.provider_peers)) {
        // Peers may announce only themselves; a record naming someone else is ignored.
        if (p.id != from.id) continue;
        KadPeerInfo rec = p;
        if (rec.addrs.empty()) rec.addrs = from.addrs;
        PG_TRY(store_.add_provider(request.key, rec, now_ms, config_.provider_ttl_ms));
        ++taken;
      }
      if (taken == 0) return make_error("ADD_PROVIDER names no provider record of the sender");
      return std::optional<KadMessage>();
    }
    case KadMessageType::GetProviders: {
      if (request.key.empty()) return make_error("GET_PROVIDERS without a key");
      for (const KadPeerInfo& p : store_.providers(request.key, now_ms)) resp.provider_peers.push_back(to_wire(p));
      closer();
      return std::optional<KadMessage>(std::move(resp));
    }
  }
  return make_error("unknown kad message type");
}

// --- queries --------------------------------------------------------------------------------

KadQueryId Kademlia::find_node(BytesView target, uint64_t now_ms) {
  return start_query(KadQueryKind::FindNode, Bytes(target), now_ms);
}

KadQueryId Kademlia::get_providers(BytesView key, uint64_t now_ms) {
  return start_query(KadQueryKind::GetProviders, Bytes(key), now_ms);
}

KadQueryId Kademlia::get_value(BytesView key, uint64_t now_ms) {
  return start_query(KadQueryKind::GetValue, Bytes(key), now_ms);
}

KadQueryId Kademlia::put_value(BytesView key, Bytes value, uint64_t now_ms) {
  Bytes k(key);
  published_[k] = Published{.value = value, .next_ms = now_ms + config_.record_republish_ms};
  return start_query(KadQueryKind::PutValue, std::move(k), now_ms, std::move(value));
}

KadQueryId Kademlia::provide(BytesView key, uint64_t now_ms, bool republish) {
  Bytes k(key);
  if (republish) providing_[k] = now_ms + config_.provider_reannounce_ms;
  return start_query(KadQueryKind::AddProvider, std::move(k), now_ms);
}

void Kademlia::stop_providing(BytesView key) { providing_.erase(Bytes(key)); }

KadQueryId Kademlia::bootstrap(uint64_t now_ms) { return start_query(KadQueryKind::Bootstrap, self_.bytes(), now_ms); }

void Kademlia::cancel(KadQueryId id) { queries_.erase(id); }

KadQueryId Kademlia::start_query(KadQueryKind kind, Bytes key, uint64_t now_ms, Bytes value) {
  KadQueryId id = next_query_++;
  auto q = std::make_unique<KadQuery>(id, kind, std::move(key), now_ms, config_);
  q->value = std::move(value);
  // What we hold ourselves counts first: a provider or record in our store needs no network.
  if (kind == KadQueryKind::GetProviders) {
    for (const KadPeerInfo& p : store_.providers(q->key, now_ms)) {
      if (q->provider_ids.insert(p.id).second) q->result.providers.push_back(p);
    }
  } else if (kind == KadQueryKind::GetValue) {
    if (auto rec = store_.get_record(q->key, now_ms)) {
      q->result.records.push_back(KadRecord{.key = q->key, .value = rec->value, .time_received = {}});
    }
  } else if (kind == KadQueryKind::PutValue) {
    (void)store_.put_record(q->key, q->value, now_ms, config_.record_ttl_ms);  // a cap only loses the local copy
  } else if (kind == KadQueryKind::AddProvider) {
    (void)store_.add_provider(q->key, KadPeerInfo{.id = self_, .addrs = self_addrs_}, now_ms,
                              config_.provider_ttl_ms);
  }
  q->add_candidates(table_.closest(q->target, config_.k), 0, self_);
  KadQuery& ref = *q;
  queries_.emplace(id, std::move(q));
  drive(ref, now_ms);
  return id;
}

KadMessage Kademlia::request_for(const KadQuery& q) const {
  KadMessage m;
  m.key = q.key;
  switch (q.kind) {
    case KadQueryKind::GetProviders: m.type = KadMessageType::GetProviders; break;
    case KadQueryKind::GetValue: m.type = KadMessageType::GetValue; break;
    case KadQueryKind::Ping: m.type = KadMessageType::Ping; m.key.clear(); break;
    default: m.type = KadMessageType::FindNode; break;  // lookups before a store are FIND_NODE
  }
  return m;
}

void Kademlia::send_direct(KadQuery& q, const std::vector<KadPeerInfo>& targets, uint64_t now_ms) {
  q.start_direct(targets, now_ms);
  for (const KadPeerInfo& t : targets) {
    OutboundRequest r{.query = q.id, .peer = t, .message = {}, .expects_response = true};
    r.message.key = q.key;
    if (q.kind == KadQueryKind::PutValue) {
      r.message.type = KadMessageType::PutValue;
      r.message.record = KadRecord{.key = q.key, .value = q.value, .time_received = {}};
    } else if (q.kind == KadQueryKind::AddProvider) {
      r.message.type = KadMessageType::AddProvider;
      r.message.provider_peers.push_back(to_wire(KadPeerInfo{.id = self_, .addrs = self_addrs_}));
      r.expects_response = false;
    } else {
      r.message = request_for(q);
    }
    outbox_.push_back(std::move(r));
  }
}

bool Kademlia::drive(KadQuery& q, uint64_t now_ms) {
  if (q.phase == KadQuery::Phase::Lookup) {
    bool enough = (q.kind == KadQueryKind::GetValue && q.result.records.size() >= config_.quorum) ||
                  (q.kind == KadQueryKind::GetProviders && q.result.providers.size() >= config_.providers_wanted);
    if (!enough && !q.lookup_complete()) {
      for (const KadPeerInfo& p : q.next_lookup_targets(now_ms)) {
        outbox_.push_back(OutboundRequest{.query = q.id, .peer = p, .message = request_for(q), .expects_response = true});
      }
      if (!q.lookup_complete()) return true;
    }
    q.result.closest = q.closest_succeeded(config_.k);
    if (q.kind == KadQueryKind::PutValue || q.kind == KadQueryKind::AddProvider) {
      if (!q.result.closest.empty()) {
        send_direct(q, q.result.closest, now_ms);
        return true;
      }
    }
    finish(q);
    return false;
  }
  if (q.phase == KadQuery::Phase::Direct && q.direct_done()) {
    finish(q);
    return false;
  }
  return true;
}

void Kademlia::finish(KadQuery& q) {
  q.phase = KadQuery::Phase::Done;
  if (q.kind == KadQueryKind::FindNode) {
    if (auto target = PeerId::from_bytes(q.key)) {
      if (const KadQuery::Candidate* c = q.candidate(*target)) q.result.peer = c->info;
      else if (const RoutingTable::Entry* e = table_.find(*target)) q.result.peer = e->peer;
    }
  }
  if (q.kind != KadQueryKind::Ping) results_.push_back(std::move(q.result));
  queries_.erase(q.id);  // q is gone after this line
}

std::vector<OutboundRequest> Kademlia::poll() {
  std::vector<OutboundRequest> out(std::make_move_iterator(outbox_.begin()), std::make_move_iterator(outbox_.end()));
  outbox_.clear();
  return out;
}

void Kademlia::on_response(KadQueryId query, const PeerId& from, const KadMessage& response, uint64_t now_ms) {
  auto it = queries_.find(query);
  if (it == queries_.end()) return;  // finished or cancelled meanwhile
  KadQuery& q = *it->second;
  if (q.phase == KadQuery::Phase::Direct) {
    if (!q.direct_pending(from)) {
      q.mark(from, true);  // a lookup request still out when the lookup ended: just settle it
      return;
    }
    if (q.kind == KadQueryKind::Ping) table_.ping_result(from, true, now_ms);
    q.finish_direct(from, true);
    drive(q, now_ms);
    return;
  }
  const KadQuery::Candidate* c = q.candidate(from);
  if (!c || c->state != KadQuery::PeerState::Waiting) return;
  KadPeerInfo responder = c->info;
  size_t depth = c->depth + 1;
  q.mark(from, true);
  // It answered a kad request, so it serves the DHT: it belongs in our table.
  on_peer_seen(responder, now_ms);
  q.add_candidates(parse_peers(response.closer_peers), depth, self_);
  if (q.kind == KadQueryKind::GetProviders) {
    for (const KadPeerInfo& p : parse_peers(response.provider_peers)) {
      if (q.result.providers.size() >= config_.store_limits.max_providers_per_key * 4) break;
      if (q.provider_ids.insert(p.id).second) q.result.providers.push_back(p);
    }
  } else if (q.kind == KadQueryKind::GetValue && response.record && response.record->key == q.key) {
    q.result.records.push_back(*response.record);
  }
  drive(q, now_ms);
}

void Kademlia::on_failure(KadQueryId query, const PeerId& from, uint64_t now_ms) {
  auto it = queries_.find(query);
  if (it == queries_.end()) return;
  KadQuery& q = *it->second;
  if (q.phase == KadQuery::Phase::Direct) {
    if (!q.direct_pending(from)) {
      q.mark(from, false);  // see on_response: otherwise it would stay "waiting" and expire forever
      return;
    }
    if (q.kind == KadQueryKind::Ping) table_.ping_result(from, false, now_ms);
    q.finish_direct(from, false);
  } else if (q.mark(from, false)) {
    table_.remove(from);
  } else {
    return;
  }
  drive(q, now_ms);
}

std::vector<KadQueryResult> Kademlia::take_results() {
  std::vector<KadQueryResult> out = std::move(results_);
  results_.clear();
  return out;
}

// --- time -----------------------------------------------------------------------------------

void Kademlia::tick(uint64_t now_ms) {
  std::vector<KadQueryId> ids;
  for (const auto& [id, q] : queries_) ids.push_back(id);
  for (KadQueryId id : ids) {
    auto it = queries_.find(id);
    if (it == queries_.end()) continue;
    KadQuery& q = *it->second;
    if (now_ms >= q.deadline_ms) {
      q.result.timed_out = true;
      q.result.closest = q.closest_succeeded(config_.k);
      finish(q);
      continue;
    }
    for (const PeerId& p : q.expire(now_ms)) on_failure(id, p, now_ms);
  }
  store_.expire(now_ms);
  for (auto& [key, next] : providing_) {
    if (now_ms < next) continue;
    next = now_ms + config_.provider_reannounce_ms;
    start_query(KadQueryKind::AddProvider, key, now_ms);
  }
  for (auto& [key, pub] : published_) {
    if (now_ms < pub.next_ms) continue;
    pub.next_ms = now_ms + config_.record_republish_ms;
    start_query(KadQueryKind::PutValue, key, now_ms, pub.value);
  }
  if (now_ms >= next_refresh_ms_) {
    next_refresh_ms_ = now_ms + config_.bucket_refresh_ms;
    if (table_.size() > 0) {
      bootstrap(now_ms);
      // Random lookups into buckets nobody touched lately keep far regions of the table fresh.
      constexpr size_t kMaxRefreshLookups = 8;
      size_t n = 0;
      constexpr int kMaxGuesses = 8192;  // per refresh, all buckets together
      int guesses = 0;
      std::vector<size_t> stale = table_.stale_buckets(now_ms, config_.bucket_refresh_ms);
      std::sort(stale.rbegin(), stale.rend());  // far buckets first: cheap to hit, most peers
      for (size_t b : stale) {
        if (n >= kMaxRefreshLookups) break;
        // Peers compare against sha256 of the key we send, so we need a key whose hash falls in
        // bucket b. Guessing finds one quickly for the far buckets, where nearly all peers live;
        // the near ones are covered by the self lookup above.
        for (; guesses < kMaxGuesses; ++guesses) {
          Bytes key(32, '\0');
          for (size_t j = 0; j < 32; j += 8) {
            uint64_t r = next_random();
            std::memcpy(key.data() + j, &r, 8);
          }
          if (self_key_.bucket_of(KadKey::from_key(key)) != b) continue;
          table_.mark_bucket_refreshed(b, now_ms);
          start_query(KadQueryKind::FindNode, std::move(key), now_ms);
          ++n;
          break;
        }
      }
    }
  }
}

uint64_t Kademlia::next_tick_ms(uint64_t now_ms) const {
  uint64_t t = next_refresh_ms_;
  for (const auto& [id, q] : queries_) t = std::min(t, q->next_deadline_ms());
  for (const auto& [key, next] : providing_) t = std::min(t, next);
  for (const auto& [key, pub] : published_) t = std::min(t, pub.next_ms);
  t = std::min(t, store_.next_expiry_ms());
  return t <= now_ms ? 0 : t - now_ms;
}

}  // namespace punchgate
