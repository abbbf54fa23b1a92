#include "tunnel/peer_connector.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/kad/kad_service.hpp"
#include "relay/circuit_addr.hpp"

#include <algorithm>

namespace punchgate {

struct PeerConnector::PeerState {
  explicit PeerState(uv_loop_t* loop) : retry(loop) {}
  std::vector<ConnectFn> waiting;
  bool dialing = false;
  uint64_t backoff_ms = 0;       // 0: no failure since the last success
  uint64_t next_attempt_at = 0;  // uv_now() time before which we do not dial
  Timer retry;
  std::optional<Multiaddr> last_good;
};

PeerConnector::PeerConnector(Host& host, KadService* kad) : host_(host), kad_(kad) {}

PeerConnector::~PeerConnector() { *alive_ = false; }

void PeerConnector::connect(const PeerId& peer, ConnectFn cb) {
  if (auto c = host_.connection_to(peer)) {
    note_route(peer, c);
    return cb(c);
  }
  auto& st = peers_[peer];
  if (!st) st = std::make_unique<PeerState>(host_.loop());
  st->waiting.push_back(std::move(cb));
  if (st->dialing || st->retry.active()) return;
  uint64_t now = uv_now(host_.loop());
  if (now < st->next_attempt_at) {
    st->retry.start(st->next_attempt_at - now, 0, [this, peer] { attempt(peer, false); });
    return;
  }
  attempt(peer, false);
}

void PeerConnector::attempt(const PeerId& peer, bool looked_up) {
  auto& st = *peers_[peer];
  if (auto c = host_.connection_to(peer)) return complete(peer, c);
  std::vector<Multiaddr> addrs;
  if (st.last_good) addrs.push_back(*st.last_good);
  if (const PeerInfo* info = host_.peer_store().get(peer)) {
    // Direct addresses first; relayed ones only when those fail.
    for (bool relayed : {false, true}) {
      for (const Multiaddr& a : info->addrs) {
        if (a.is_relayed() == relayed && (!st.last_good || a != *st.last_good)) addrs.push_back(a);
      }
    }
  }
  for (const Multiaddr& a : host_.relay_routes(peer)) {
    if (std::find(addrs.begin(), addrs.end(), a.without_peer_id()) == addrs.end()) addrs.push_back(a.without_peer_id());
  }
  st.dialing = true;
  if (addrs.empty()) {
    if (kad_ && !looked_up) return lookup(peer, "no known address");
    return complete(peer, make_error("no known address for peer {} (give one with --bootstrap, or check that it "
                                     "is on the DHT)", peer.to_base58()));
  }
  try_addrs(peer, std::move(addrs), looked_up);
}

void PeerConnector::lookup(const PeerId& peer, std::string last_error) {
  kad_->after_join([this, alive = alive_, peer, last_error] {
    if (*alive) find_in_dht(peer, last_error);
  });
}

void PeerConnector::find_in_dht(const PeerId& peer, std::string last_error) {
  spdlog::info("looking up peer addresses in DHT peer={} reason={}", peer.to_base58(), log_quote(last_error));
  kad_->find_node(peer, [this, alive = alive_, peer, last_error](const KadQueryResult& r) {
    if (!*alive) return;
    if (r.peer && !r.peer->addrs.empty()) {
      host_.peer_store().add_addrs(peer, r.peer->addrs);
    }
    if (auto c = host_.connection_to(peer)) return complete(peer, c);  // the lookup itself reached it
    if (!r.peer || r.peer->addrs.empty()) {
      return complete(peer, make_error("cannot reach peer {}: {}; the DHT knows no address for it", peer.to_base58(),
                                       last_error));
    }
    attempt(peer, true);
  });
}

void PeerConnector::try_addrs(const PeerId& peer, std::vector<Multiaddr> addrs, bool looked_up) {
  // All at once: direct addresses race each other, relayed ones join after a head start, so an
  // unreachable private address never delays the tunnel by a whole handshake timeout.
  host_.dial_any(peer, std::move(addrs), [this, alive = alive_, peer, looked_up](Result<ConnectionPtr> r) {
    if (!*alive) return;
    if (r) {
      if (!(*r)->is_relayed()) peers_[peer]->last_good = (*r)->remote_addr().without_peer_id();
      return complete(peer, r);
    }
    if (kad_ && !looked_up) return lookup(peer, r.error().message);  // its addresses may have changed
    complete(peer, make_error("cannot reach peer {}: {}", peer.to_base58(), r.error().message));
  });
}

void PeerConnector::note_route(const PeerId& peer, const ConnectionPtr& c) {
  if (!c->is_relayed()) return;
  auto [it, fresh] = relayed_logged_.try_emplace(peer, c->id());
  if (!fresh && it->second == c->id()) return;
  it->second = c->id();
  auto circuit = parse_circuit_addr(c->remote_addr());
  spdlog::info("connected to tunnel target via relay peer_id={} relay={}", peer.to_base58(),
               circuit ? circuit->relay_id.to_base58() : std::string("?"));
}

void PeerConnector::complete(const PeerId& peer, Result<ConnectionPtr> r) {
  auto& st = *peers_[peer];
  st.dialing = false;
  if (r) {
    st.backoff_ms = 0;
    st.next_attempt_at = 0;
    note_route(peer, *r);
  } else {
    st.backoff_ms = st.backoff_ms == 0 ? kInitialBackoffMs : std::min(st.backoff_ms * 2, kMaxBackoffMs);
    st.next_attempt_at = uv_now(host_.loop()) + st.backoff_ms;
    spdlog::warn("peer unreachable peer={} error=\"{}\" retry_after_ms={}", peer.to_base58(), r.error().message,
                 st.backoff_ms);
  }
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& cb : waiting) cb(r);
}

}  // namespace punchgate
