#include "tunnel/tunnel_target.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/kad/kad_service.hpp"
#include "tunnel/peer_connector.hpp"

#include <algorithm>

namespace punchgate {

Bytes service_provider_key(const std::string& service) { return "/punchgate/svc/" + service; }

void FixedPeerTarget::connect(ConnectFn cb) { connector_.connect(peer_, std::move(cb)); }

ServiceProviderTarget::ServiceProviderTarget(Host& host, KadService* kad, PeerConnector& connector, std::string service)
    : host_(host), kad_(kad), connector_(connector), service_(std::move(service)) {}

ServiceProviderTarget::~ServiceProviderTarget() { *alive_ = false; }

void ServiceProviderTarget::connect(ConnectFn cb) {
  if (!busy_ && !current_.empty()) {
    if (ConnectionPtr c = host_.connection_to(current_)) return cb(c);
  }
  waiting_.push_back(std::move(cb));
  if (busy_) return;
  busy_ = true;
  uint64_t now = uv_now(host_.loop());
  std::vector<PeerId> order = ordered_candidates();
  bool fresh = have_lookup_ && now - looked_up_at_ < kLookupMaxAgeMs;
  bool any_good = std::any_of(order.begin(), order.end(), [&](const PeerId& p) { return !failed_at_.contains(p); });
  if (fresh && any_good) return try_candidates(std::move(order), 0, "");
  lookup();
}

bool ServiceProviderTarget::failed(const PeerId& peer) {
  failed_at_[peer] = uv_now(host_.loop());
  if (current_ == peer) current_ = PeerId();
  // Another provider to try, or a lookup that may find one.
  return kad_ != nullptr;
}

void ServiceProviderTarget::lookup() {
  if (!kad_) return complete(make_error("no DHT on this node to find a provider of \"{}\"", service_));
  kad_->after_join([this, alive = alive_] {
    if (*alive) find_providers();
  });
}

void ServiceProviderTarget::find_providers() {
  spdlog::info("starting DHT lookup for tunnel target service={}", service_);
  kad_->get_providers(service_provider_key(service_), [this, alive = alive_](const KadQueryResult& r) {
    if (!*alive) return;
    have_lookup_ = true;
    looked_up_at_ = uv_now(host_.loop());
    providers_.clear();
    for (const KadPeerInfo& p : r.providers) {
      if (p.id == host_.peer_id()) continue;
      if (!p.addrs.empty()) host_.peer_store().add_addrs(p.id, p.addrs);
      providers_.push_back(p.id);
    }
    if (providers_.empty()) {
      std::string why = fmt::format("no provider of service \"{}\" found in the DHT", service_);
      spdlog::warn("tunnel target lookup failed service={} reason={}", service_, log_quote(why));
      return complete(Error{why});
    }
    try_candidates(ordered_candidates(), 0, "");
  });
}

std::vector<PeerId> ServiceProviderTarget::ordered_candidates() const {
  uint64_t now = uv_now(host_.loop());
  auto rank = [&](const PeerId& p) {
    if (auto it = failed_at_.find(p); it != failed_at_.end() && now - it->second < kFailedPenaltyMs) return 3;
    if (host_.connection_to(p)) return 0;
    if (const PeerInfo* info = host_.peer_store().get(p)) {
      for (const Multiaddr& a : info->addrs) {
        if (!a.is_relayed()) return 1;  // reachable without a relay
      }
    }
    return 2;
  };
  std::vector<PeerId> order = providers_;
  std::stable_sort(order.begin(), order.end(), [&](const PeerId& a, const PeerId& b) { return rank(a) < rank(b); });
  return order;
}

void ServiceProviderTarget::try_candidates(std::vector<PeerId> order, size_t index, std::string last_error) {
  if (index >= order.size()) {
    std::string why = order.empty() ? fmt::format("no provider of service \"{}\" is known", service_)
                                    : fmt::format("no provider of service \"{}\" is reachable: {}", service_, last_error);
    // Next time, ask the DHT afresh: the providers we knew may all be gone.
    have_lookup_ = false;
    return complete(Error{why});
  }
  PeerId peer = order[index];
  spdlog::info("dialing tunnel target after DHT lookup target_peer={} service={}", peer.to_base58(), service_);
  connector_.connect(peer, [this, alive = alive_, order = std::move(order), index, peer](Result<ConnectionPtr> r) mutable {
    if (!*alive) return;
    if (!r) {
      failed_at_[peer] = uv_now(host_.loop());
      return try_candidates(std::move(order), index + 1, r.error().message);
    }
    current_ = peer;
    failed_at_.erase(peer);
    complete(std::move(r));
  });
}

void ServiceProviderTarget::complete(Result<ConnectionPtr> r) {
  busy_ = false;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& cb : waiting) cb(r);
}

}  // namespace punchgate
