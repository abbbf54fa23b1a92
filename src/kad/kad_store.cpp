#include "punchgate/kad/kad_store.hpp"

#include "punchgate/kad/kad_message.hpp"

#include <algorithm>
#include <utility>

namespace punchgate {

namespace {

uint64_t expiry(uint64_t now_ms, uint64_t ttl_ms) {
  return ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms;  // saturate, never wrap
}

bool expired(uint64_t expires_ms, uint64_t now_ms) { return now_ms >= expires_ms; }

// Provider records carry what the announcer told us; keep it bounded like a routing entry.
KadPeerInfo capped(const KadPeerInfo& p) {
  KadPeerInfo out{p.id, {}};
  const size_t n = std::min(p.addrs.size(), kMaxKadAddrsPerPeer);
  out.addrs.assign(p.addrs.begin(), p.addrs.begin() + static_cast<std::ptrdiff_t>(n));
  return out;
}

}  // namespace

Status KadStore::put_record(const Bytes& key, Bytes value, uint64_t now_ms, uint64_t ttl_ms) {
  if (value.size() > limits_.max_record_value) {
    return make_error("kad record value of {} bytes exceeds max_record_value ({})", value.size(),
                      limits_.max_record_value);
  }
  auto it = records_.find(key);
  if (it == records_.end() && records_.size() >= limits_.max_records) {
    // Make room from expired records before refusing.
    std::erase_if(records_, [now_ms](const auto& kv) { return expired(kv.second.expires_ms, now_ms); });
    if (records_.size() >= limits_.max_records) {
      return make_error("kad store full: max_records ({}) reached", limits_.max_records);
    }
  }
  StoredRecord& rec = records_[key];
  rec.value = std::move(value);
  rec.received_ms = now_ms;
  rec.expires_ms = expiry(now_ms, ttl_ms);
  return {};
}

std::optional<StoredRecord> KadStore::get_record(const Bytes& key, uint64_t now_ms) const {
  auto it = records_.find(key);
  if (it == records_.end() || expired(it->second.expires_ms, now_ms)) return std::nullopt;
  return it->second;
}

void KadStore::remove_record(const Bytes& key) { records_.erase(key); }

Status KadStore::add_provider(const Bytes& key, const KadPeerInfo& provider, uint64_t now_ms, uint64_t ttl_ms) {
  if (limits_.max_providers_per_key == 0) {
    return make_error("kad provider refused: max_providers_per_key is 0");
  }
  const uint64_t expires = expiry(now_ms, ttl_ms);
  auto it = providers_.find(key);
  if (it != providers_.end()) {
    auto& list = it->second;
    auto known = std::find_if(list.begin(), list.end(), [&](const Provider& p) { return p.peer.id == provider.id; });
    if (known != list.end()) {
      // A re-announcement refreshes; an announcement without addresses keeps the ones we had.
      if (!provider.addrs.empty()) known->peer = capped(provider);
      known->expires_ms = expires;
      return {};
    }
    const size_t before = list.size();
    std::erase_if(list, [now_ms](const Provider& p) { return expired(p.expires_ms, now_ms); });
    provider_total_ -= before - list.size();
    if (list.size() >= limits_.max_providers_per_key) {
      auto soonest = std::min_element(list.begin(), list.end(), [](const Provider& a, const Provider& b) {
        return a.expires_ms < b.expires_ms;
      });
      *soonest = Provider{capped(provider), expires};
      return {};
    }
  }
  // A new entry: make room from expired ones before refusing on either total cap.
  if (provider_total_ >= limits_.max_provider_records) {
    expire(now_ms);
    if (provider_total_ >= limits_.max_provider_records) {
      return make_error("kad store full: max_provider_records ({}) reached", limits_.max_provider_records);
    }
  }
  it = providers_.find(key);  // expire() may have dropped the key's (now empty) list
  if (it == providers_.end()) {
    if (providers_.size() >= limits_.max_provider_keys) {
      expire(now_ms);
      if (providers_.size() >= limits_.max_provider_keys) {
        return make_error("kad store full: max_provider_keys ({}) reached", limits_.max_provider_keys);
      }
    }
    it = providers_.emplace(key, std::vector<Provider>{}).first;
  }
  it->second.push_back(Provider{capped(provider), expires});
  ++provider_total_;
  return {};
}

std::vector<KadPeerInfo> KadStore::providers(const Bytes& key, uint64_t now_ms) const {
  std::vector<KadPeerInfo> out;
  auto it = providers_.find(key);
  if (it == providers_.end()) return out;
  for (const auto& p : it->second) {
    if (!expired(p.expires_ms, now_ms)) out.push_back(p.peer);
  }
  return out;
}

void KadStore::expire(uint64_t now_ms) {
  std::erase_if(records_, [now_ms](const auto& kv) { return expired(kv.second.expires_ms, now_ms); });
  for (auto it = providers_.begin(); it != providers_.end();) {
    auto& list = it->second;
    const size_t before = list.size();
    std::erase_if(list, [now_ms](const Provider& p) { return expired(p.expires_ms, now_ms); });
    provider_total_ -= before - list.size();
    it = list.empty() ? providers_.erase(it) : std::next(it);
  }
}

uint64_t KadStore::next_expiry_ms() const {
  uint64_t next = UINT64_MAX;
  for (const auto& [key, rec] : records_) next = std::min(next, rec.expires_ms);
  for (const auto& [key, list] : providers_) {
    for (const auto& p : list) next = std::min(next, p.expires_ms);
  }
  return next;
}

}  // namespace punchgate
