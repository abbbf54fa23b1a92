#include "punchgate/host/peer_store.hpp"

#include <algorithm>

namespace punchgate {

void PeerStore::add_addrs(const PeerId& peer, const std::vector<Multiaddr>& addrs) {
  if (!peers_.contains(peer) && peers_.size() >= kMaxPeers) return;
  PeerInfo& info = peers_[peer];
  for (const Multiaddr& a : addrs) {
    if (info.addrs.size() >= kMaxAddrsPerPeer) break;
    info.addrs.insert(a.without_peer_id());
  }
}

void PeerStore::set_identify(const PeerId& peer, PeerInfo info) {
  if (!peers_.contains(peer) && peers_.size() >= kMaxPeers) return;
  PeerInfo& cur = peers_[peer];
  for (const Multiaddr& a : info.addrs) {
    if (cur.addrs.size() >= kMaxAddrsPerPeer) break;
    cur.addrs.insert(a);
  }
  cur.protocols = std::move(info.protocols);
  cur.protocol_version = std::move(info.protocol_version);
  cur.agent_version = std::move(info.agent_version);
}

const PeerInfo* PeerStore::get(const PeerId& peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? nullptr : &it->second;
}

bool PeerStore::supports(const PeerId& peer, std::string_view protocol) const {
  const PeerInfo* info = get(peer);
  return info && std::find(info->protocols.begin(), info->protocols.end(), protocol) != info->protocols.end();
}

void PeerStore::add_observed(const Multiaddr& addr, const PeerId& reporter) {
  auto it = observed_.find(addr);
  if (it == observed_.end()) {
    if (observed_.size() >= kMaxObserved) return;
    it = observed_.emplace(addr, std::set<PeerId>{}).first;
  }
  if (it->second.size() < 64) it->second.insert(reporter);
}

std::vector<Multiaddr> PeerStore::observed_addrs(size_t min_reporters) const {
  std::vector<std::pair<size_t, Multiaddr>> ranked;
  for (const auto& [addr, reporters] : observed_) {
    if (reporters.size() >= min_reporters) ranked.emplace_back(reporters.size(), addr);
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<Multiaddr> out;
  for (auto& [n, a] : ranked) out.push_back(std::move(a));
  return out;
}

}  // namespace punchgate
