#include "punchgate/host/host.hpp"

#include "host/stream_negotiation.hpp"
#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/ping_service.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace punchgate {

namespace {

constexpr uint64_t kMaxBackoffMs = 60'000;
// A redundant connection (relayed while a direct one exists, or a second direct one from a
// simultaneous punch) is closed once idle this long after it became redundant.
constexpr uint64_t kRedundantGraceMs = 5'000;
constexpr uint64_t kPruneIntervalMs = 1'000;

// Which of several connections to one peer to use. Direct beats relayed. Of two direct ones (both
// sides dialed during a hole punch) both ends pick the same: the one dialed by the peer with the
// smaller id, then the oldest.
ConnectionPtr pick_preferred(const std::vector<ConnectionPtr>& list, const PeerId& self) {
  ConnectionPtr best;
  auto rank = [&](const ConnectionPtr& c) {
    const PeerId& dialer = c->endpoint() == Endpoint::Dialer ? self : c->remote_peer();
    const PeerId& other = c->endpoint() == Endpoint::Dialer ? c->remote_peer() : self;
    return std::make_tuple(c->is_relayed() ? 1 : 0, dialer < other ? 0 : 1, c->id());
  };
  for (const auto& c : list) {
    if (c->is_closed()) continue;
    if (!best || rank(c) < rank(best)) best = c;
  }
  return best;
}

// The interface addresses an unspecified bind (0.0.0.0 / ::) is reachable on, with its port.
std::vector<Multiaddr> expand_unspecified(const Multiaddr& bound) {
  auto ep = quic_endpoint_of(bound);
  if (!ep) return {bound};
  uv_interface_address_t* ifs = nullptr;
  int count = 0;
  if (uv_interface_addresses(&ifs, &count) != 0) return {bound};
  std::vector<Multiaddr> out;
  for (int i = 0; i < count; ++i) {
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&ifs[i].address);
    if (sa->sa_family != ep->family) continue;
    sockaddr_storage copy{};
    if (sa->sa_family == AF_INET) {
      auto sin = *reinterpret_cast<const sockaddr_in*>(sa);
      sin.sin_port = htons(ep->port);
      std::memcpy(&copy, &sin, sizeof sin);
    } else {
      auto sin6 = *reinterpret_cast<const sockaddr_in6*>(sa);
      if (IN6_IS_ADDR_LINKLOCAL(&sin6.sin6_addr)) continue;  // needs a scope id; useless to others
      sin6.sin6_port = htons(ep->port);
      std::memcpy(&copy, &sin6, sizeof sin6);
    }
    out.push_back(multiaddr_from_sockaddr(reinterpret_cast<const sockaddr*>(&copy), true));
  }
  uv_free_interface_addresses(ifs, count);
  if (out.empty()) out.push_back(bound);
  return out;
}

}  // namespace

Host::Host(uv_loop_t* loop, Identity identity, HostConfig config)
    : loop_(loop), identity_(std::move(identity)), config_(std::move(config)) {}

Host::~Host() { shutdown("shutting down"); }

Result<std::unique_ptr<Host>> Host::create(uv_loop_t* loop, Identity identity, HostConfig config) {
  std::unique_ptr<Host> h(new Host(loop, std::move(identity), std::move(config)));
  auto t = QuicTransport::create(loop, h->identity_, h->config_.quic);
  if (!t) return t.error();
  h->transport_ = std::move(*t);
  h->transport_->set_inbound_handler([host = h.get()](ConnectionPtr c) { host->add_connection(c); });
  h->identify_ = std::make_unique<IdentifyService>(*h);
  h->ping_ = std::make_unique<PingService>(*h, h->config_.ping_interval_ms);
  return h;
}

Status Host::start() {
  spdlog::info("local_peer_id={}", peer_id().to_base58());
  for (const Multiaddr& a : config_.listen) {
    auto bound = transport_->listen(a);
    if (!bound) return bound.error();
  }
  for (const Multiaddr& a : listen_addrs()) spdlog::info("listening on {}", a.to_string());
  for (const Multiaddr& a : config_.bootstrap) {
    peers_.add_addrs(*a.peer_id(), {a.without_peer_id()});
    Bootstrap b;
    b.addr = a;
    b.retry = std::make_unique<Timer>(loop_);
    bootstrap_.push_back(std::move(b));
  }
  for (size_t i = 0; i < bootstrap_.size(); ++i) schedule_bootstrap(i);
  prune_timer_ = std::make_unique<Timer>(loop_);
  prune_timer_->start(kPruneIntervalMs, kPruneIntervalMs, [this] { prune_redundant(); });
  return {};
}

void Host::schedule_bootstrap(size_t index) {
  Bootstrap& b = bootstrap_[index];
  if (shutting_down_ || b.dialing || b.connected) return;
  b.dialing = true;
  dial(b.addr, [this, index](Result<ConnectionPtr> r) {
    Bootstrap& bs = bootstrap_[index];
    bs.dialing = false;
    if (shutting_down_) return;
    if (r) {
      bs.connected = true;
      bs.backoff_ms = 1000;
      return;
    }
    spdlog::warn("bootstrap dial failed addr={} error={} retry_in_ms={}", bs.addr.to_string(), r.error().message,
                 bs.backoff_ms);
    bs.retry->start(bs.backoff_ms, 0, [this, index] { schedule_bootstrap(index); });
    bs.backoff_ms = std::min(bs.backoff_ms * 2, kMaxBackoffMs);
  });
}

std::vector<Multiaddr> Host::listen_addrs() const {
  std::vector<Multiaddr> out;
  if (!transport_) return out;
  for (const Multiaddr& a : transport_->listen_addrs()) {
    if (a.is_unspecified_ip()) {
      for (auto& e : expand_unspecified(a)) out.push_back(std::move(e));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

void Host::set_stream_handler(const std::string& protocol, StreamHandler handler) {
  handlers_[protocol] = std::move(handler);
}

void Host::remove_stream_handler(const std::string& protocol) {
  if (handlers_.erase(protocol) && !shutting_down_) identify_->push_all();
}

std::vector<std::string> Host::protocols() const {
  std::vector<std::string> out;
  for (const auto& [p, h] : handlers_) out.push_back(p);
  return out;
}

std::vector<Multiaddr> Host::advertised_addrs() const {
  std::vector<Multiaddr> out = mapped_addrs_;
  for (Multiaddr& a : listen_addrs()) out.push_back(std::move(a));
  out.insert(out.end(), relay_addrs_.begin(), relay_addrs_.end());
  return out;
}

void Host::set_mapped_addrs(std::vector<Multiaddr> addrs) {
  if (addrs == mapped_addrs_) return;
  mapped_addrs_ = std::move(addrs);
  if (!shutting_down_) identify_->push_all();
}

void Host::set_relay_addrs(std::vector<Multiaddr> addrs) {
  if (addrs == relay_addrs_) return;
  relay_addrs_ = std::move(addrs);
  if (!shutting_down_) identify_->push_all();
}

ConnectionPtr Host::connection_to(const PeerId& peer) const {
  auto it = conns_.find(peer);
  if (it == conns_.end()) return nullptr;
  return pick_preferred(it->second, peer_id());
}

void Host::prune_redundant() {
  uint64_t now = uv_now(loop_);
  std::vector<std::pair<ConnectionPtr, const char*>> to_close;
  std::unordered_map<uint64_t, uint64_t> still;
  for (const auto& [peer, list] : conns_) {
    if (list.size() < 2) continue;
    ConnectionPtr keep = pick_preferred(list, peer_id());
    if (!keep) continue;
    for (const auto& c : list) {
      if (c == keep || c->is_closed()) continue;
      auto it = redundant_since_.find(c->id());
      uint64_t since = it == redundant_since_.end() ? now : it->second;
      still[c->id()] = since;
      if (c->stream_count() == 0 && now - since >= kRedundantGraceMs) {
        const char* why = !c->is_relayed()   ? "duplicate direct connection"
                          : keep->is_relayed() ? "duplicate relayed connection"
                                               : "direct connection preferred";
        to_close.emplace_back(c, why);
      }
    }
  }
  redundant_since_ = std::move(still);
  for (auto& [c, why] : to_close) {
    spdlog::info("closing redundant connection peer={} relayed={} reason=\"{}\"", c->remote_peer().to_base58(),
                 c->is_relayed(), why);
    c->close(why);
  }
}

void Host::dial_direct(const Multiaddr& addr, DialCallback cb) {
  if (shutting_down_) return cb(make_error("host is shutting down"));
  transport_->dial(addr, [this, cb = std::move(cb)](Result<ConnectionPtr> r) {
    if (r) {
      add_connection(*r);
      if ((*r)->is_closed()) r = make_error("connection closed right after opening");
    }
    cb(std::move(r));
  });
}

Result<uint64_t> Host::dial_from_fresh_socket(const Multiaddr& addr, DialCallback cb) {
  if (shutting_down_) return make_error("host is shutting down");
  return transport_->dial_from_fresh_socket(addr, [this, cb = std::move(cb)](Result<ConnectionPtr> r) {
    if (r) {
      add_connection(*r);
      if ((*r)->is_closed()) r = make_error("connection closed right after opening");
    }
    cb(std::move(r));
  });
}

Result<uint64_t> Host::dial_detached(const Multiaddr& addr, DialCallback cb) {
  if (shutting_down_) return make_error("host is shutting down");
  return transport_->dial_from_fresh_socket(addr, std::move(cb));
}

void Host::abort_fresh_dial(uint64_t handle) {
  if (transport_) transport_->abort_fresh_dial(handle);
}

Status Host::send_datagram(const Multiaddr& addr, BytesView data) {
  if (shutting_down_) return make_error("host is shutting down");
  return transport_->send_datagram(addr, data);
}

void Host::dial_any(const PeerId& peer, std::vector<Multiaddr> addrs, DialCallback cb) {
  if (shutting_down_) return cb(make_error("host is shutting down"));
  if (peer == peer_id()) return cb(make_error("refusing to dial ourselves"));
  if (auto existing = connection_to(peer)) return cb(existing);
  struct Race {
    explicit Race(uv_loop_t* loop) : relay_timer(loop) {}
    DialCallback cb;
    std::vector<Multiaddr> relayed;
    size_t pending = 0;
    bool answered = false;
    bool relays_started = false;
    std::string last_error = "no address to dial";
    Timer relay_timer;
  };
  auto race = std::make_shared<Race>(loop_);
  race->cb = std::move(cb);
  std::vector<Multiaddr> direct;
  for (Multiaddr& a : addrs) {
    Multiaddr full = a.with_peer_id(peer);
    auto& bucket = full.is_relayed() ? race->relayed : direct;
    if (std::find(bucket.begin(), bucket.end(), full) == bucket.end()) bucket.push_back(std::move(full));
  }
  race->pending = direct.size() + race->relayed.size();
  if (race->pending == 0) return race->cb(make_error("no address to dial for {}", peer.to_base58()));
  // Every address ends here exactly once. No lambda below holds the race except the dial
  // callbacks, so the race lives exactly as long as a dial is in flight.
  auto settle = [](const std::shared_ptr<Race>& rc, const Multiaddr& addr, Result<ConnectionPtr> r) {
    --rc->pending;
    if (!r) {
      spdlog::debug("dial failed addr={} error={}", addr.to_string(), log_quote(r.error().message));
      rc->last_error = r.error().message;
    }
    if (rc->answered) return;
    if (r || rc->pending == 0) {
      rc->answered = true;
      rc->relay_timer.stop();
      auto done = std::move(rc->cb);
      done(r ? std::move(r) : Result<ConnectionPtr>(make_error("{}", rc->last_error)));
    }
  };
  auto start_relays = [this, settle](const std::shared_ptr<Race>& rc) {
    if (rc->relays_started || rc->answered) return;
    rc->relays_started = true;
    rc->relay_timer.stop();
    for (const Multiaddr& a : rc->relayed) {
      if (!circuit_dialer_ || shutting_down_) {
        settle(rc, a, make_error("cannot dial {}: relaying is off", a.to_string()));
        continue;
      }
      circuit_dialer_(a, [this, rc, a, settle](Result<ConnectionPtr> r) {
        if (r) {
          add_connection(*r);
          if ((*r)->is_closed()) r = make_error("connection closed right after opening");
        }
        settle(rc, a, std::move(r));
      });
    }
  };
  auto direct_left = std::make_shared<size_t>(direct.size());
  for (const Multiaddr& a : direct) {
    dial_direct(a, [race, a, settle, start_relays, direct_left](Result<ConnectionPtr> r) {
      bool failed = !r;
      settle(race, a, std::move(r));
      if (failed && --*direct_left == 0) start_relays(race);
    });
  }
  if (race->relayed.empty() || race->answered) return;
  if (direct.empty()) return start_relays(race);
  std::weak_ptr<Race> weak = race;
  race->relay_timer.start(kRelayHeadStartMs, 0, [weak, start_relays] {
    if (auto r = weak.lock()) start_relays(r);
  });
}

std::vector<ConnectionPtr> Host::connections() const {
  std::vector<ConnectionPtr> out;
  for (const auto& [peer, list] : conns_) {
    for (const auto& c : list) out.push_back(c);
  }
  return out;
}

void Host::dial(const Multiaddr& addr, DialCallback cb) {
  if (shutting_down_) return cb(make_error("host is shutting down"));
  auto peer = addr.peer_id();
  if (!peer) return cb(make_error("multiaddr {} has no /p2p/ peer id", addr.to_string()));
  if (*peer == peer_id()) return cb(make_error("refusing to dial ourselves ({})", addr.to_string()));
  if (auto existing = connection_to(*peer)) return cb(existing);
  auto [it, first] = dialing_.try_emplace(*peer);
  it->second.push_back(std::move(cb));
  if (!first) return;
  PeerId target = *peer;
  auto finished = [this, target, addr](Result<ConnectionPtr> r) {
    auto node = dialing_.extract(target);
    if (r) {
      add_connection(*r);
      // The allow list or shutdown may have closed it again.
      if ((*r)->is_closed()) r = make_error("connection to {} closed right after opening", target.to_base58());
    } else {
      spdlog::debug("dial failed addr={} error={}", addr.to_string(), r.error().message);
    }
    if (node.empty()) return;
    for (auto& waiter : node.mapped()) waiter(r);
  };
  if (!addr.is_relayed()) return transport_->dial(addr, std::move(finished));
  if (!circuit_dialer_) return finished(make_error("cannot dial {}: relaying is off", addr.to_string()));
  circuit_dialer_(addr, std::move(finished));
}

void Host::add_connection(const ConnectionPtr& c) {
  if (shutting_down_) {
    c->close("shutting down");
    return;
  }
  const PeerId peer = c->remote_peer();
  if (c->endpoint() == Endpoint::Listener && !config_.allow.empty() &&
      std::find(config_.allow.begin(), config_.allow.end(), peer) == config_.allow.end()) {
    // Refused before any stream is served: the peer learns nothing about our services.
    spdlog::warn("connection refused peer={} reason=\"not in allow list\"", peer.to_base58());
    c->close("peer not allowed");
    return;
  }
  conns_[peer].push_back(c);
  peers_.add_addrs(peer, {c->remote_addr()});
  spdlog::info("connection opened peer={} endpoint={} remote_addr={} relayed={}", peer.to_base58(),
               to_string(c->endpoint()), c->remote_addr().to_string(), c->is_relayed());
  std::weak_ptr<Connection> weak = c;
  c->set_handlers({
      .on_stream =
          [this, weak](StreamPtr s) {
            if (auto conn = weak.lock()) on_inbound_stream(conn, std::move(s));
          },
      .on_closed =
          [this, weak, peer](const std::string& reason) {
            auto conn = weak.lock();
            spdlog::info("connection closed peer={} reason={}", peer.to_base58(), reason);
            auto it = conns_.find(peer);
            if (it != conns_.end()) {
              std::erase_if(it->second, [&](const ConnectionPtr& x) { return x == conn || x->is_closed(); });
              if (it->second.empty()) conns_.erase(it);
            }
            for (auto& b : bootstrap_) {
              if (b.addr.peer_id() == peer && !connection_to(peer)) {
                b.connected = false;
                size_t index = static_cast<size_t>(&b - bootstrap_.data());
                b.retry->start(b.backoff_ms, 0, [this, index] { schedule_bootstrap(index); });
              }
            }
            for (auto& obs : observers_) obs(conn, false, reason);
          },
  });
  for (auto& obs : observers_) obs(c, true, "");
  identify_->request(c);
}

void Host::on_inbound_stream(const ConnectionPtr& c, StreamPtr s) {
  negotiate_inbound(loop_, c, std::move(s), protocols(), [this](NegotiatedStream ns) {
    auto it = handlers_.find(ns.protocol);
    if (it == handlers_.end()) {
      ns.stream->reset(0);
      return;
    }
    it->second(std::move(ns));
  });
}

void Host::open_stream(const ConnectionPtr& conn, std::vector<std::string> protocols,
                       std::function<void(Result<NegotiatedStream>)> cb) {
  auto s = conn->open_stream();
  if (!s) return cb(s.error());
  negotiate_outbound(loop_, conn, std::move(*s), std::move(protocols), std::move(cb));
}

void Host::shutdown(const std::string& reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  for (auto& b : bootstrap_) b.retry->stop();
  if (prune_timer_) prune_timer_->stop();
  ping_.reset();
  // Relayed connections first: their Go Away still travels over the direct ones.
  for (const ConnectionPtr& c : connections()) {
    if (c->is_relayed()) c->close(reason);
  }
  if (transport_) transport_->shutdown(reason);
}

}  // namespace punchgate
