#include "punchgate/kad/routing_table.hpp"

#include "punchgate/kad/kad_message.hpp"

#include <algorithm>
#include <utility>

namespace punchgate {

namespace {

// A ping whose outcome was never reported (lost by the executor) is asked for again after this,
// so the bucket's parked candidate can't wait forever. Well above any request timeout.
constexpr uint64_t kPingRetryMs = 60'000;

// The addresses just seen come first (most likely current), then older ones not repeated,
// deduplicated and capped, so a peer advertising many addresses can't grow the table.
std::vector<Multiaddr> merge_addrs(const std::vector<Multiaddr>& fresh, const std::vector<Multiaddr>& old) {
  std::vector<Multiaddr> out;
  out.reserve(std::min(fresh.size() + old.size(), kMaxKadAddrsPerPeer));
  for (const auto* list : {&fresh, &old}) {
    for (const auto& a : *list) {
      if (out.size() == kMaxKadAddrsPerPeer) return out;
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
  }
  return out;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

RoutingTable::RoutingTable(const PeerId& self, size_t k)
    : self_(self), self_key_(KadKey::of_peer(self)), k_(std::max<size_t>(k, 1)) {}

RoutingTable::Bucket* RoutingTable::bucket_for(const KadKey& key) {
  auto index = self_key_.bucket_of(key);
  if (!index) return nullptr;
  return &buckets_[*index];
}

RoutingTable::UpdateResult RoutingTable::update(const KadPeerInfo& peer, uint64_t now_ms) {
  if (peer.id.empty() || peer.id == self_) return {};
  const KadKey key = KadKey::of_peer(peer.id);
  Bucket* b = bucket_for(key);
  if (b == nullptr) return {};  // a different id hashing to our key: never in practice

  auto& entries = b->entries;
  auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.peer.id == peer.id; });
  if (it != entries.end()) {
    Entry e = std::move(*it);
    entries.erase(it);
    e.peer.addrs = merge_addrs(peer.addrs, e.peer.addrs);
    e.last_seen_ms = now_ms;
    entries.push_back(std::move(e));
    b->last_touched_ms = now_ms;
    return {Outcome::Updated, std::nullopt};
  }

  Entry fresh{KadPeerInfo{peer.id, merge_addrs(peer.addrs, {})}, key, now_ms};
  if (entries.size() < k_) {
    if (b->pending && b->pending->peer.id == peer.id) b->pending.reset();
    entries.push_back(std::move(fresh));
    b->last_touched_ms = now_ms;
    return {Outcome::Inserted, std::nullopt};
  }

  // Full: park the newcomer (a fresher one replaces an earlier candidate) and ask for one ping
  // of the least-recently-seen entry at a time.
  const bool ping_outstanding =
      b->pending.has_value() && (now_ms < b->ping_asked_ms || now_ms - b->ping_asked_ms < kPingRetryMs);
  if (b->pending && b->pending->peer.id == peer.id) {
    fresh.peer.addrs = merge_addrs(peer.addrs, b->pending->peer.addrs);
  }
  b->pending = std::move(fresh);
  UpdateResult r{Outcome::Pending, std::nullopt};
  if (!ping_outstanding) {
    b->ping_asked_ms = now_ms;
    r.ping = entries.front().peer;
  }
  return r;
}

void RoutingTable::ping_result(const PeerId& pinged, bool alive, uint64_t now_ms) {
  Bucket* b = bucket_for(KadKey::of_peer(pinged));
  if (b == nullptr) return;
  auto& entries = b->entries;
  auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.peer.id == pinged; });
  if (it != entries.end()) {
    if (alive) {
      Entry e = std::move(*it);
      entries.erase(it);
      e.last_seen_ms = now_ms;
      entries.push_back(std::move(e));
      b->pending.reset();
      b->last_touched_ms = now_ms;
      return;
    }
    entries.erase(it);
  }
  // Dead, or already gone: the parked candidate takes the free slot.
  if (b->pending && entries.size() < k_) {
    Entry e = std::move(*b->pending);
    b->pending.reset();
    e.last_seen_ms = now_ms;
    entries.push_back(std::move(e));
    b->last_touched_ms = now_ms;
  }
}

bool RoutingTable::remove(const PeerId& peer) {
  Bucket* b = bucket_for(KadKey::of_peer(peer));
  if (b == nullptr) return false;
  if (b->pending && b->pending->peer.id == peer) {
    b->pending.reset();
    return true;
  }
  auto& entries = b->entries;
  auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.peer.id == peer; });
  if (it == entries.end()) return false;
  entries.erase(it);
  // The parked candidate (seen more recently than anyone's ping) fills the gap; it keeps its
  // own last-seen time since nothing was heard from it since.
  if (b->pending) {
    entries.push_back(std::move(*b->pending));
    b->pending.reset();
  }
  return true;
}

const RoutingTable::Entry* RoutingTable::find(const PeerId& peer) const {
  auto index = self_key_.bucket_of(KadKey::of_peer(peer));
  if (!index) return nullptr;
  for (const auto& e : buckets_[*index].entries) {
    if (e.peer.id == peer) return &e;
  }
  return nullptr;
}

bool RoutingTable::contains(const PeerId& peer) const { return find(peer) != nullptr; }

std::vector<KadPeerInfo> RoutingTable::closest(const KadKey& target, size_t n) const {
  std::vector<std::pair<KadKey, const Entry*>> all;
  all.reserve(size());
  for (const auto& b : buckets_) {
    for (const auto& e : b.entries) all.emplace_back(e.key.distance(target), &e);
  }
  const size_t take = std::min(n, all.size());
  auto by_distance = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(take), all.end(), by_distance);
  std::vector<KadPeerInfo> out;
  out.reserve(take);
  for (size_t i = 0; i < take; ++i) out.push_back(all[i].second->peer);
  return out;
}

size_t RoutingTable::size() const {
  size_t n = 0;
  for (const auto& b : buckets_) n += b.entries.size();
  return n;
}

std::vector<size_t> RoutingTable::stale_buckets(uint64_t now_ms, uint64_t interval_ms) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < kBuckets; ++i) {
    const Bucket& b = buckets_[i];
    if (b.entries.empty() || now_ms < b.last_touched_ms) continue;
    if (now_ms - b.last_touched_ms >= interval_ms) out.push_back(i);
  }
  return out;
}

void RoutingTable::mark_bucket_refreshed(size_t index, uint64_t now_ms) {
  if (index < kBuckets) buckets_[index].last_touched_ms = now_ms;
}

KadKey RoutingTable::random_key_in_bucket(size_t index, uint64_t random) const {
  index = std::min(index, kBuckets - 1);
  // A distance whose highest set bit is `index`: zeros above it, random bits below.
  uint64_t state = random;
  KadKey::Array d{};
  for (size_t i = 0; i < d.size(); i += 8) {
    uint64_t word = splitmix64(state);
    for (size_t j = 0; j < 8; ++j) d[i + j] = static_cast<uint8_t>(word >> (8 * j));
  }
  // Bit `index` of the big-endian number lives in byte 31 - index/8, at bit index%8.
  const size_t byte = 31 - index / 8;
  const unsigned bit = static_cast<unsigned>(index % 8);
  for (size_t i = 0; i < byte; ++i) d[i] = 0;
  const auto below = static_cast<uint8_t>((1u << bit) - 1);
  d[byte] = static_cast<uint8_t>((d[byte] & below) | (1u << bit));
  return self_key_.distance(KadKey(d));
}

}  // namespace punchgate
