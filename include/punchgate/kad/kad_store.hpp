// In-memory stores of the DHT: value records and provider records, each with a TTL and caps per
// key and in total, so a flood of PUT_VALUE / ADD_PROVIDER can't grow us without bound.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/kad/routing_table.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace punchgate {

struct KadStoreLimits {
  size_t max_records = 10'000;
  size_t max_record_value = 64 * 1024;
  size_t max_provider_keys = 10'000;
  size_t max_providers_per_key = 20;
  size_t max_provider_records = 100'000;
};

struct StoredRecord {
  Bytes value;
  uint64_t expires_ms = 0;
  uint64_t received_ms = 0;
};

class KadStore {
 public:
  explicit KadStore(KadStoreLimits limits) : limits_(limits) {}

  // Error names the cap that refused it.
  Status put_record(const Bytes& key, Bytes value, uint64_t now_ms, uint64_t ttl_ms);
  std::optional<StoredRecord> get_record(const Bytes& key, uint64_t now_ms) const;
  void remove_record(const Bytes& key);

  // Adds or refreshes `provider` for `key`. When the key already has max_providers_per_key
  // providers, the one expiring soonest is replaced.
  Status add_provider(const Bytes& key, const KadPeerInfo& provider, uint64_t now_ms, uint64_t ttl_ms);
  std::vector<KadPeerInfo> providers(const Bytes& key, uint64_t now_ms) const;

  void expire(uint64_t now_ms);
  size_t record_count() const { return records_.size(); }
  size_t provider_record_count() const { return provider_total_; }
  // Earliest expiry among stored entries (UINT64_MAX when empty).
  uint64_t next_expiry_ms() const;

 private:
  struct Provider {
    KadPeerInfo peer;
    uint64_t expires_ms;
  };
  KadStoreLimits limits_;
  std::map<Bytes, StoredRecord> records_;
  std::map<Bytes, std::vector<Provider>> providers_;
  size_t provider_total_ = 0;
};

}  // namespace punchgate
