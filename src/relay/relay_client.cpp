#include "relay/relay_client.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "relay/circuit_addr.hpp"
#include "relay/circuit_message.hpp"
#include "relay/framed_read.hpp"
#include "relay/relay_service.hpp"
#include "relay/reservation_voucher.hpp"
#include "transport/muxed_connection.hpp"

#include <fmt/ranges.h>

#include <algorithm>

namespace punchgate {

namespace {

constexpr uint64_t kMessageTimeoutMs = 10'000;
constexpr uint64_t kRetryInitialMs = 5'000;
constexpr uint64_t kRetryMaxMs = 300'000;

bool offers_hop(const PeerInfo* info) {
  return info && std::find(info->protocols.begin(), info->protocols.end(), kRelayHopProtocol) != info->protocols.end();
}

std::string addrs_text(const std::vector<Multiaddr>& addrs) {
  std::vector<std::string> out;
  for (const Multiaddr& a : addrs) out.push_back(a.to_string());
  return fmt::format("[{}]", fmt::join(out, ","));
}

}  // namespace

struct RelayClient::RelayState {
  explicit RelayState(uv_loop_t* loop) : timer(loop) {}
  bool reserving = false;
  std::optional<RelayReservationInfo> reservation;
  uint64_t retry_ms = kRetryInitialMs;
  Timer timer;  // renewal while reserved, retry after a failure
};

RelayClient::RelayClient(Host& host, RelayConfig config, bool reserving)
    : host_(host), config_(std::move(config)), reserves_(reserving && config_.mode != RelayMode::Off) {
  if (config_.mode == RelayMode::Off) return;
  // The host may outlive us (destruction order in main): every hook checks `alive`.
  host_.set_circuit_dialer([this, alive = alive_](const Multiaddr& addr, Host::DialCallback cb) {
    if (!*alive) return cb(make_error("cannot dial {}: relaying is off", addr.to_string()));
    dial_circuit(addr, std::move(cb));
  });
  host_.set_relay_routes([this, alive = alive_](const PeerId& peer) {
    return *alive ? routes_via_relays(peer) : std::vector<Multiaddr>{};
  });
  host_.set_stream_handler(std::string(kRelayStopProtocol), [this, alive = alive_](NegotiatedStream ns) {
    if (*alive) on_stop(std::move(ns));
  });
  host_.identify().add_observer([this, alive = alive_](const IdentifyResult& r) {
    if (*alive) consider(r.peer);
  });
  host_.add_connection_observer([this, alive = alive_](const ConnectionPtr& c, bool opened, const std::string& reason) {
    if (!*alive || !reserves_ || opened || c->is_relayed()) return;
    const PeerId& peer = c->remote_peer();
    if (host_.connection_to(peer) && !host_.connection_to(peer)->is_relayed()) return;
    // Our reservation lived on that connection.
    if (relays_.count(peer)) reservation_lost(peer, "connection closed: " + reason);
    // Another relay may take its place.
    for (const ConnectionPtr& other : host_.connections()) {
      if (!other->is_relayed() && !other->is_closed()) consider(other->remote_peer());
    }
  });
}

RelayClient::~RelayClient() { *alive_ = false; }

void RelayClient::set_reserving(bool on) {
  if (config_.mode == RelayMode::Off || on == reserves_) return;
  reserves_ = on;
  if (on) {
    for (const ConnectionPtr& c : host_.connections()) {
      if (!c->is_relayed() && !c->is_closed()) consider(c->remote_peer());
    }
    return;
  }
  size_t had = reservations().size();
  relays_.clear();  // timers stop; a reply still on its way finds no state and is dropped
  if (had) spdlog::info("relay reservations released count={}", had);
  publish_addrs();
}

bool RelayClient::wants_relay(const PeerId& relay) const {
  if (config_.mode == RelayMode::Fixed) return config_.fixed_relay && config_.fixed_relay->peer_id() == relay;
  return offers_hop(host_.peer_store().get(relay));
}

size_t RelayClient::active_count() const {
  size_t n = 0;
  for (const auto& [peer, st] : relays_) n += (st->reserving || st->reservation) ? 1 : 0;
  return n;
}

void RelayClient::consider(const PeerId& relay) {
  if (!reserves_ || !wants_relay(relay)) return;
  auto it = relays_.find(relay);
  if (it != relays_.end() && (it->second->reserving || it->second->reservation || it->second->timer.active())) return;
  if (active_count() >= config_.target_reservations) return;
  ConnectionPtr conn = host_.connection_to(relay);
  if (!conn || conn->is_relayed()) return;
  reserve(relay, conn);
}

void RelayClient::reserve(const PeerId& relay, const ConnectionPtr& conn) {
  auto& st = relays_[relay];
  if (!st) st = std::make_unique<RelayState>(host_.loop());
  st->reserving = true;
  host_.open_stream(conn, {std::string(kRelayHopProtocol)}, [this, alive = alive_, relay, conn](Result<NegotiatedStream> r) {
    if (!*alive) return;
    if (!r) return reservation_failed(relay, r.error().message);
    HopMessage req;
    req.type = HopMessageType::Reserve;
    StreamPtr stream = r->stream;
    send_and_finish(stream, req.encode_framed());
    read_framed_message(host_.loop(), stream, std::move(r->leftover), kMaxCircuitMessageSize, kMessageTimeoutMs,
                        [this, alive, relay, conn](Result<FramedMessage> m) {
      if (!*alive) return;
      if (!m) return reservation_failed(relay, "no reply: " + m.error().message);
      auto reply = HopMessage::decode(m->message);
      if (!reply) return reservation_failed(relay, "bad reply: " + reply.error().message);
      if (reply->type != HopMessageType::StatusReply) return reservation_failed(relay, "unexpected reply type");
      CircuitStatus status = reply->status.value_or(CircuitStatus::Unused);
      if (status != CircuitStatus::Ok) return reservation_failed(relay, "relay answered " + to_string(status));
      if (!reply->reservation) return reservation_failed(relay, "OK without a reservation");
      const CircuitReservation& res = *reply->reservation;
      uint64_t now = unix_now();
      if (res.expire <= now) return reservation_failed(relay, "reservation already expired");
      if (res.voucher) {
        auto v = verify_voucher(*res.voucher, relay);
        if (!v) return reservation_failed(relay, "bad voucher: " + v.error().message);
        if (v->peer != host_.peer_id()) return reservation_failed(relay, "voucher names another peer");
      }
      RelayReservationInfo info{relay, res.expire, {}};
      for (const Bytes& raw : res.addrs) {
        auto a = Multiaddr::from_bytes(raw);
        if (!a || a->is_relayed()) continue;
        Multiaddr with_id = a->peer_id() == relay ? *a : a->without_peer_id().with_peer_id(relay);
        info.addrs.push_back(make_circuit_addr(with_id));
      }
      if (info.addrs.empty()) info.addrs.push_back(make_circuit_addr(conn->remote_addr().without_peer_id().with_peer_id(relay)));
      auto it = relays_.find(relay);
      if (it == relays_.end()) return;  // released meanwhile (set_reserving(false))
      auto& state = *it->second;
      state.reserving = false;
      state.retry_ms = kRetryInitialMs;
      bool renewal = state.reservation.has_value();
      spdlog::info("relay reservation accepted relay={} expires={} addrs={}{}", relay.to_base58(), res.expire,
                   addrs_text(info.addrs), renewal ? " renewal=true" : "");
      if (reply->limit) {
        spdlog::info("relay limits relay={} duration_s={} data_bytes={}", relay.to_base58(),
                     reply->limit->duration.value_or(0), reply->limit->data.value_or(0));
      }
      state.reservation = std::move(info);
      // Renew when three quarters of the remaining time have passed.
      uint64_t renew_ms = std::max<uint64_t>(1000, (res.expire - now) * 750);
      state.timer.start(renew_ms, 0, [this, alive, relay] {
        if (!*alive) return;
        ConnectionPtr c = host_.connection_to(relay);
        if (c && !c->is_relayed()) reserve(relay, c);
      });
      publish_addrs();
    });
  });
}

void RelayClient::reservation_failed(const PeerId& relay, const std::string& error) {
  auto it = relays_.find(relay);
  if (it == relays_.end()) return;
  RelayState& st = *it->second;
  st.reserving = false;
  spdlog::warn("relay reservation failed relay={} error={} retry_in_ms={}", relay.to_base58(), log_quote(error),
               st.retry_ms);
  // A failed renewal leaves the old reservation until its expiry; a failed first try is retried.
  uint64_t delay = st.retry_ms;
  st.retry_ms = std::min(st.retry_ms * 2, kRetryMaxMs);
  st.timer.start(delay, 0, [this, alive = alive_, relay] {
    if (!*alive) return;
    auto i = relays_.find(relay);
    if (i == relays_.end()) return;
    if (i->second->reservation && i->second->reservation->expire <= unix_now()) reservation_lost(relay, "expired");
    ConnectionPtr c = host_.connection_to(relay);
    if (c && !c->is_relayed() && active_count() < config_.target_reservations + (i->second->reservation ? 1 : 0)) {
      reserve(relay, c);
    }
  });
}

void RelayClient::reservation_lost(const PeerId& relay, const std::string& why) {
  auto it = relays_.find(relay);
  if (it == relays_.end()) return;
  bool had = it->second->reservation.has_value();
  relays_.erase(it);
  if (had) {
    spdlog::warn("relay reservation lost relay={} reason={}", relay.to_base58(), log_quote(why));
    publish_addrs();
  }
}

void RelayClient::publish_addrs() {
  std::vector<Multiaddr> addrs;
  for (const auto& [peer, st] : relays_) {
    if (st->reservation) addrs.insert(addrs.end(), st->reservation->addrs.begin(), st->reservation->addrs.end());
  }
  host_.set_relay_addrs(std::move(addrs));
}

std::vector<RelayReservationInfo> RelayClient::reservations() const {
  std::vector<RelayReservationInfo> out;
  for (const auto& [peer, st] : relays_) {
    if (st->reservation) out.push_back(*st->reservation);
  }
  return out;
}

std::vector<Multiaddr> RelayClient::routes_via_relays(const PeerId& peer) const {
  std::vector<Multiaddr> out;
  if (config_.mode == RelayMode::Off) return out;
  for (const ConnectionPtr& c : host_.connections()) {
    if (c->is_closed() || c->is_relayed() || c->remote_peer() == peer) continue;
    if (config_.mode == RelayMode::Fixed && config_.fixed_relay->peer_id() != c->remote_peer()) continue;
    if (!offers_hop(host_.peer_store().get(c->remote_peer()))) continue;
    out.push_back(make_circuit_addr(c->remote_addr().without_peer_id().with_peer_id(c->remote_peer()), peer));
  }
  return out;
}

void RelayClient::dial_circuit(const Multiaddr& addr, Host::DialCallback cb) {
  auto c = parse_circuit_addr(addr);
  if (!c) return cb(c.error());
  if (!c->target) return cb(make_error("{}: no /p2p/<target> after /p2p-circuit", addr.to_string()));
  PeerId target = *c->target;
  PeerId relay = c->relay_id;
  Multiaddr remote = make_circuit_addr(c->relay, target);
  host_.dial(c->relay, [this, alive = alive_, target, relay, remote, cb](Result<ConnectionPtr> rc) {
    if (!*alive) return;
    if (!rc) return cb(make_error("relay {} unreachable: {}", relay.to_base58(), rc.error().message));
    ConnectionPtr relay_conn = *rc;
    if (relay_conn->is_relayed()) return cb(make_error("relay {} is only reachable through a relay", relay.to_base58()));
    host_.open_stream(relay_conn, {std::string(kRelayHopProtocol)},
                      [this, alive, target, relay, remote, relay_conn, cb](Result<NegotiatedStream> r) {
      if (!*alive) return;
      if (!r) return cb(make_error("relay {} does not relay: {}", relay.to_base58(), r.error().message));
      HopMessage req;
      req.type = HopMessageType::Connect;
      req.peer = CircuitPeer{target.bytes(), {}};
      StreamPtr stream = r->stream;
      Bytes framed = req.encode_framed();
      if (stream->write(framed) < framed.size()) {
        stream->reset(0);
        return cb(make_error("relay {}: stream has no room", relay.to_base58()));
      }
      read_framed_message(host_.loop(), stream, std::move(r->leftover), kMaxCircuitMessageSize, kMessageTimeoutMs,
                          [this, alive, target, relay, remote, relay_conn, stream, cb](Result<FramedMessage> m) {
        if (!*alive) return;
        auto fail = [&](const std::string& why) {
          stream->reset(0);
          cb(make_error("relay {} could not connect us to {}: {}", relay.to_base58(), target.to_base58(), why));
        };
        if (!m) return fail(m.error().message);
        auto reply = HopMessage::decode(m->message);
        if (!reply) return fail("bad reply: " + reply.error().message);
        CircuitStatus status = reply->status.value_or(CircuitStatus::Unused);
        if (reply->type != HopMessageType::StatusReply || status != CircuitStatus::Ok) return fail(to_string(status));
        MuxedConnection::Info info{remote, relay_conn->local_addr(), Endpoint::Dialer};
        MuxedConnection::upgrade(host_.loop(), stream, std::move(m->rest),
                                 SecureMuxSession::dialer(host_.identity(), target), std::move(info), cb);
      });
    });
  });
}

void RelayClient::on_stop(NegotiatedStream ns) {
  ConnectionPtr relay_conn = ns.conn;
  StreamPtr stream = ns.stream;
  if (relay_conn->is_relayed()) {
    send_and_finish(stream, stop_status_reply(CircuitStatus::PermissionDenied).encode_framed());
    return;
  }
  read_framed_message(host_.loop(), stream, std::move(ns.leftover), kMaxCircuitMessageSize, kMessageTimeoutMs,
                      [this, alive = alive_, relay_conn, stream](Result<FramedMessage> m) {
    if (!*alive) return;
    const PeerId relay = relay_conn->remote_peer();
    if (!m) {
      stream->reset(0);
      return;
    }
    auto msg = StopMessage::decode(m->message);
    if (!msg || msg->type != StopMessageType::Connect || !msg->peer) {
      send_and_finish(stream, stop_status_reply(CircuitStatus::MalformedMessage).encode_framed());
      return;
    }
    auto src = PeerId::from_bytes(msg->peer->id);
    if (!src) {
      send_and_finish(stream, stop_status_reply(CircuitStatus::MalformedMessage).encode_framed());
      return;
    }
    Bytes ok = stop_status_reply(CircuitStatus::Ok).encode_framed();
    if (stream->write(ok) < ok.size()) {
      stream->reset(0);
      return;
    }
    PeerId claimed = *src;
    Multiaddr remote = make_circuit_addr(relay_conn->remote_addr().without_peer_id().with_peer_id(relay), claimed);
    MuxedConnection::Info info{remote, relay_conn->local_addr(), Endpoint::Listener};
    MuxedConnection::upgrade(host_.loop(), stream, std::move(m->rest), SecureMuxSession::listener(host_.identity()),
                             std::move(info), [this, alive, claimed, relay](Result<ConnectionPtr> r) {
      if (!*alive) return;
      if (!r) {
        spdlog::info("relayed connection failed relay={} src={} error={}", relay.to_base58(), claimed.to_base58(),
                     log_quote(r.error().message));
        return;
      }
      if ((*r)->remote_peer() != claimed) {
        // The relay named one peer and Noise authenticated another.
        spdlog::warn("relayed connection refused relay={} claimed={} actual={}", relay.to_base58(),
                     claimed.to_base58(), (*r)->remote_peer().to_base58());
        (*r)->close("peer is not the one the relay announced");
        return;
      }
      host_.adopt_connection(*r);
    });
  });
}

}  // namespace punchgate
