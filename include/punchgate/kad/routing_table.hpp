// The Kademlia routing table: 256 k-buckets by XOR distance from our own key. Entries are kept
// least-recently-seen first. A full bucket does not evict on its own: it names its oldest entry
// for a liveness ping and parks the newcomer; the ping's outcome decides who stays.
#pragma once

#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/kad/kad_key.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace punchgate {

struct KadPeerInfo {
  PeerId id;
  std::vector<Multiaddr> addrs;
  friend bool operator==(const KadPeerInfo&, const KadPeerInfo&) = default;
};

class RoutingTable {
 public:
  static constexpr size_t kBuckets = 256;

  struct Entry {
    KadPeerInfo peer;
    KadKey key;
    uint64_t last_seen_ms = 0;
  };

  enum class Outcome { Inserted, Updated, Pending, Rejected };
  struct UpdateResult {
    Outcome outcome = Outcome::Rejected;
    // Pending: ping this least-recently-seen entry. Empty when a ping for the bucket is already
    // under way (the newcomer then replaces the parked candidate); asked again if its outcome
    // has not arrived within a minute, so a lost ping_result() cannot lock the bucket.
    std::optional<KadPeerInfo> ping;
  };

  RoutingTable(const PeerId& self, size_t k);

  // `peer` was seen alive now. Existing entries move to the most-recently-seen end (addresses
  // are merged); new ones are added when there is room; otherwise see Pending above.
  UpdateResult update(const KadPeerInfo& peer, uint64_t now_ms);
  // Outcome of the ping asked for by update(). Alive: the old entry stays (refreshed) and the
  // parked candidate is dropped. Dead: the old entry goes and the candidate takes its place.
  void ping_result(const PeerId& pinged, bool alive, uint64_t now_ms);
  bool remove(const PeerId& peer);
  bool contains(const PeerId& peer) const;
  const Entry* find(const PeerId& peer) const;

  // Up to n entries closest to `target`, nearest first.
  std::vector<KadPeerInfo> closest(const KadKey& target, size_t n) const;
  size_t size() const;
  size_t bucket_size(size_t index) const { return buckets_[index].entries.size(); }
  // Non-empty buckets not touched for `interval_ms` (candidates for a refresh lookup).
  std::vector<size_t> stale_buckets(uint64_t now_ms, uint64_t interval_ms) const;
  void mark_bucket_refreshed(size_t index, uint64_t now_ms);
  // A key whose bucket (seen from us) is `index`, derived from `random` bits.
  KadKey random_key_in_bucket(size_t index, uint64_t random) const;
  const KadKey& self_key() const { return self_key_; }

 private:
  struct Bucket {
    std::vector<Entry> entries;  // least-recently-seen first
    std::optional<Entry> pending;
    uint64_t ping_asked_ms = 0;  // when update() last named an entry to ping for `pending`
    uint64_t last_touched_ms = 0;
  };
  Bucket* bucket_for(const KadKey& key);

  PeerId self_;
  KadKey self_key_;
  size_t k_;
  std::array<Bucket, kBuckets> buckets_;
};

}  // namespace punchgate
