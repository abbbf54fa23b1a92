// What we know about other peers: addresses, protocols and versions (from identify), and the
// addresses other peers observed us at (kept for NAT traversal).
#pragma once

#include "punchgate/crypto/peer_id.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace punchgate {

struct PeerInfo {
  std::set<Multiaddr> addrs;
  std::vector<std::string> protocols;
  std::string protocol_version;
  std::string agent_version;
};

class PeerStore {
 public:
  static constexpr size_t kMaxAddrsPerPeer = 32;
  static constexpr size_t kMaxPeers = 10'000;
  static constexpr size_t kMaxObserved = 64;

  void add_addrs(const PeerId& peer, const std::vector<Multiaddr>& addrs);
  void set_identify(const PeerId& peer, PeerInfo info);
  const PeerInfo* get(const PeerId& peer) const;
  bool supports(const PeerId& peer, std::string_view protocol) const;

  // Another peer told us it saw us at `addr`.
  void add_observed(const Multiaddr& addr, const PeerId& reporter);
  // Observed addresses confirmed by at least `min_reporters` distinct peers, most reported first.
  std::vector<Multiaddr> observed_addrs(size_t min_reporters = 1) const;
  // Every observed address with the distinct peers that reported it.
  const std::map<Multiaddr, std::set<PeerId>>& observations() const { return observed_; }

 private:
  std::unordered_map<PeerId, PeerInfo> peers_;
  std::map<Multiaddr, std::set<PeerId>> observed_;
};

}  // namespace punchgate
