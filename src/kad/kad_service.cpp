#include "punchgate/kad/kad_service.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "punchgate/wire/length_prefix.hpp"

#include <algorithm>

namespace punchgate {

namespace {

// Requests one peer may make on one inbound stream before we stop answering it.
constexpr size_t kMaxRequestsPerStream = 256;
// Addresses tried when we must dial a peer for a request.
constexpr size_t kMaxDialAttempts = 3;

bool dialable(const Multiaddr& a) { return quic_endpoint_of(a).ok(); }

// Keys in logs: quoted text when printable, else hex.
std::string key_text(BytesView key) {
  bool printable = std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  return printable ? log_quote(key) : "hex:" + to_hex(key);
}

struct InboundSession {
  NegotiatedStream ns;
  UvarintFrameReader reader{kMaxKadMessageSize};
  size_t served = 0;
  bool done = false;
};

}  // namespace

// One request in flight: the core learns its outcome exactly once.
struct KadService::Outbound {
  OutboundRequest req;
  StreamPtr stream;
  UvarintFrameReader reader{kMaxKadMessageSize};
  bool reported = false;
};

KadService::KadService(Host& host, KadConfig config)
    : host_(host),
      kad_(host.peer_id(), config, now_ms(), std::hash<std::string>{}(host.peer_id().bytes())),
      timer_(std::make_unique<Timer>(host.loop())),
      alive_(std::make_shared<bool>(true)) {
  if (config.server) {
    host_.set_stream_handler(std::string(kKadProtocol), [this](NegotiatedStream ns) { serve(std::move(ns)); });
  }
  std::weak_ptr<bool> alive = alive_;
  host_.identify().add_observer([this, alive](const IdentifyResult& r) {
    if (alive.expired() || stopped_) return;
    if (!host_.peer_store().supports(r.peer, kKadProtocol)) return;
    KadPeerInfo info{.id = r.peer, .addrs = {}};
    if (const PeerInfo* p = host_.peer_store().get(r.peer)) info.addrs.assign(p->addrs.begin(), p->addrs.end());
    size_t before = kad_.routing_table().size();
    kad_.on_peer_seen(info, now_ms());
    if (kad_.routing_table().size() > before) {
      spdlog::info("kad peer added peer={} table_size={}", r.peer.to_base58(), kad_.routing_table().size());
      if (before == 0) join();
    }
    pump();
  });
  update_self_addrs();
  pump();
}

KadService::~KadService() { stop(); }

void KadService::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  alive_ = std::make_shared<bool>(false);
  timer_->stop();
  callbacks_.clear();
  for (auto& [id, w] : join_waiters_) w.timer->stop();
  join_waiters_.clear();
}

uint64_t KadService::now_ms() const { return uv_now(host_.loop()); }

void KadService::update_self_addrs() {
  std::vector<Multiaddr> addrs = host_.advertised_addrs();
  for (const Multiaddr& a : host_.peer_store().observed_addrs(2)) {
    if (std::find(addrs.begin(), addrs.end(), a) == addrs.end()) addrs.push_back(a);
  }
  kad_.set_self_addrs(std::move(addrs));
}

void KadService::track(KadQueryId id, QueryCallback cb) {
  if (cb) callbacks_.emplace(id, std::move(cb));
  pump();
}

void KadService::bootstrap(QueryCallback cb) { track(kad_.bootstrap(now_ms()), std::move(cb)); }
void KadService::find_node(const PeerId& peer, QueryCallback cb) {
  track(kad_.find_node(peer.bytes(), now_ms()), std::move(cb));
}
void KadService::get_providers(Bytes key, QueryCallback cb) { track(kad_.get_providers(key, now_ms()), std::move(cb)); }
void KadService::get_value(Bytes key, QueryCallback cb) { track(kad_.get_value(key, now_ms()), std::move(cb)); }
void KadService::put_value(Bytes key, Bytes value, QueryCallback cb) {
  update_self_addrs();
  track(kad_.put_value(key, std::move(value), now_ms()), std::move(cb));
}
void KadService::provide(Bytes key, QueryCallback cb) {
  if (!joined_) {
    pending_provides_.emplace_back(std::move(key), std::move(cb));
    return;
  }
  update_self_addrs();
  track(kad_.provide(key, now_ms(), true), std::move(cb));
}

void KadService::stop_providing(const Bytes& key) {
  std::erase_if(pending_provides_, [&](const auto& p) { return p.first == key; });
  kad_.stop_providing(key);
}

void KadService::join() {
  if (joining_) return;
  joining_ = true;
  track(kad_.bootstrap(now_ms()), [this](const KadQueryResult&) {
    joining_ = false;
    joined_ = kad_.routing_table().size() > 0;
    spdlog::info("kad bootstrap finished peers={}", kad_.routing_table().size());
    if (!joined_) return;
    auto pending = std::move(pending_provides_);
    pending_provides_.clear();
    for (auto& [key, cb] : pending) provide(std::move(key), std::move(cb));
    auto observers = join_observers_;
    for (auto& obs : observers) obs(kad_.routing_table().size());
    auto waiters = std::move(join_waiters_);
    join_waiters_.clear();
    for (auto& [id, w] : waiters) {
      w.timer->stop();
      w.cb();
    }
  });
}

void KadService::after_join(std::function<void()> cb, uint64_t max_wait_ms) {
  if (joined_ || stopped_) return cb();
  uint64_t id = next_waiter_++;
  JoinWaiter& w = join_waiters_[id];
  w.cb = std::move(cb);
  w.timer = std::make_unique<Timer>(host_.loop());
  w.timer->start(max_wait_ms, 0, [this, id] {
    auto it = join_waiters_.find(id);
    if (it == join_waiters_.end()) return;
    auto fn = std::move(it->second.cb);
    // Destroying a Timer from its own callback is fine: Timer runs a copy of the callback.
    it->second.timer->stop();
    join_waiters_.erase(it);
    fn();
  });
}

// Drains what the core produced: finished queries to their callbacks, requests to the network,
// then re-arms the timer for the core's next deadline.
void KadService::pump() {
  if (stopped_ || pumping_) return;
  pumping_ = true;
  for (;;) {
    std::vector<OutboundRequest> reqs = kad_.poll();
    std::vector<KadQueryResult> results = kad_.take_results();
    if (reqs.empty() && results.empty()) break;
    for (OutboundRequest& r : reqs) send(std::move(r));
    std::weak_ptr<bool> alive = alive_;
    for (const KadQueryResult& r : results) {
      if (r.kind == KadQueryKind::AddProvider) {
        spdlog::info("provider announced key={} peers={}", key_text(r.key), r.succeeded);
      }
      auto it = callbacks_.find(r.id);
      if (it == callbacks_.end()) continue;
      QueryCallback cb = std::move(it->second);
      callbacks_.erase(it);
      cb(r);
      if (alive.expired() || stopped_) return;  // the callback shut us down
    }
  }
  pumping_ = false;
  uint64_t wait = kad_.next_tick_ms(now_ms());
  std::weak_ptr<bool> alive = alive_;
  timer_->start(std::max<uint64_t>(wait, 1), 0, [this, alive] {
    if (alive.expired() || stopped_) return;
    update_self_addrs();  // republishing in tick() puts them in our provider records
    kad_.tick(now_ms());
    pump();
  });
}

void KadService::send(OutboundRequest req) {
  auto out = std::make_shared<Outbound>();
  out->req = std::move(req);
  const PeerId& peer = out->req.peer.id;
  if (ConnectionPtr conn = host_.connection_to(peer)) {
    send_on(conn, out);
    return;
  }
  std::vector<Multiaddr> addrs;
  auto add = [&](const Multiaddr& a) {
    Multiaddr m = a.without_peer_id();
    if (dialable(m) && std::find(addrs.begin(), addrs.end(), m) == addrs.end()) addrs.push_back(m);
  };
  for (const Multiaddr& a : out->req.peer.addrs) add(a);
  if (const PeerInfo* p = host_.peer_store().get(peer)) {
    for (const Multiaddr& a : p->addrs) add(a);
  }
  if (!out->req.peer.addrs.empty()) host_.peer_store().add_addrs(peer, out->req.peer.addrs);
  dial_next(out, std::move(addrs), 0);
}

void KadService::dial_next(std::shared_ptr<Outbound> out, std::vector<Multiaddr> addrs, size_t index) {
  if (index >= addrs.size() || index >= kMaxDialAttempts) {
    spdlog::debug("kad request failed peer={} reason=\"no reachable address\"", out->req.peer.id.to_base58());
    out->reported = true;
    kad_.on_failure(out->req.query, out->req.peer.id, now_ms());
    pump();
    return;
  }
  Multiaddr target = addrs[index].with_peer_id(out->req.peer.id);
  std::weak_ptr<bool> alive = alive_;
  host_.dial(target, [this, alive, out, addrs = std::move(addrs), index](Result<ConnectionPtr> r) mutable {
    if (alive.expired() || stopped_) return;
    if (!r) {
      dial_next(out, std::move(addrs), index + 1);
      return;
    }
    send_on(*r, out);
  });
}

void KadService::send_on(const ConnectionPtr& conn, std::shared_ptr<Outbound> out) {
  std::weak_ptr<bool> alive = alive_;
  auto report = [this, alive, out](bool ok, const KadMessage* resp, const std::string& why) {
    if (alive.expired() || stopped_ || out->reported) return;
    out->reported = true;
    if (ok) {
      kad_.on_response(out->req.query, out->req.peer.id, resp ? *resp : KadMessage{}, now_ms());
    } else {
      spdlog::debug("kad request failed peer={} type={} reason={}", out->req.peer.id.to_base58(),
                    to_string(out->req.message.type), log_quote(why));
      kad_.on_failure(out->req.query, out->req.peer.id, now_ms());
    }
    pump();
  };
  host_.open_stream(conn, {std::string(kKadProtocol)}, [out, report](Result<NegotiatedStream> r) {
    if (!r) {
      report(false, nullptr, r.error().message);
      return;
    }
    out->stream = r->stream;
    Bytes frame = out->req.message.encode_framed();
    auto finish_stream = [out] {
      if (out->stream && !out->stream->is_closed()) out->stream->reset(0);
    };
    if (!out->req.expects_response) {
      out->stream->set_handlers({.on_data = [](BytesView) {}, .on_fin = nullptr, .on_reset = nullptr,
                                 .on_writable = nullptr, .on_closed = nullptr});
      if (out->stream->write(frame) < frame.size()) {
        report(false, nullptr, "request larger than the stream's send buffer");
        finish_stream();
        return;
      }
      out->stream->shutdown_write();
      report(true, nullptr, "");
      return;
    }
    auto on_bytes = [out, report, finish_stream](BytesView d) {
      if (out->reported) return;
      std::vector<Bytes> frames;
      Status st = out->reader.feed_all(d, frames);
      if (!frames.empty()) {
        auto msg = KadMessage::decode(frames.front());
        if (!msg) {
          report(false, nullptr, "invalid response: " + msg.error().message);
        } else if (msg->type != out->req.message.type) {
          report(false, nullptr, "response type differs from request");
        } else {
          report(true, &*msg, "");
        }
        out->stream->shutdown_write();
        finish_stream();
        return;
      }
      if (!st) {
        report(false, nullptr, st.error().message);
        finish_stream();
      }
    };
    out->stream->set_handlers({
        .on_data = on_bytes,
        .on_fin = [report] { report(false, nullptr, "stream ended before a response"); },
        .on_reset = [report](uint64_t) { report(false, nullptr, "stream reset"); },
        .on_writable = nullptr,
        .on_closed = [report] { report(false, nullptr, "stream closed before a response"); },
    });
    if (!r->leftover.empty()) on_bytes(r->leftover);
    if (out->reported) return;
    if (out->stream->write(frame) < frame.size()) {
      report(false, nullptr, "request larger than the stream's send buffer");
      finish_stream();
    }
  });
}

void KadService::serve(NegotiatedStream ns) {
  auto s = std::make_shared<InboundSession>();
  s->ns = std::move(ns);
  std::weak_ptr<bool> alive = alive_;
  auto fail = [s](const std::string& why) {
    if (s->done) return;
    s->done = true;
    spdlog::debug("kad inbound request rejected peer={} reason={}", s->ns.conn->remote_peer().to_base58(),
                  log_quote(why));
    s->ns.stream->reset(0);
  };
  auto on_bytes = [this, alive, s, fail](BytesView d) {
    if (s->done || alive.expired() || stopped_) return;
    std::vector<Bytes> frames;
    Status st = s->reader.feed_all(d, frames);
    for (const Bytes& f : frames) {
      if (s->done) return;
      if (++s->served > kMaxRequestsPerStream) return fail("too many requests on one stream");
      auto req = KadMessage::decode(f);
      if (!req) return fail(req.error().message);
      const PeerId& peer = s->ns.conn->remote_peer();
      KadPeerInfo from{.id = peer, .addrs = {}};
      if (const PeerInfo* p = host_.peer_store().get(peer)) from.addrs.assign(p->addrs.begin(), p->addrs.end());
      auto resp = kad_.handle_request(from, *req, now_ms());
      if (!resp) return fail(resp.error().message);
      if (*resp) {
        Bytes out = (*resp)->encode_framed();
        if (s->ns.stream->write(out) < out.size()) return fail("peer does not read our responses");
      }
    }
    if (!st) fail(st.error().message);
    pump();  // a request may have filled a bucket and queued a liveness ping
  };
  s->ns.stream->set_handlers({
      .on_data = on_bytes,
      .on_fin = [s] {
        if (s->done) return;
        s->done = true;
        s->ns.stream->shutdown_write();
      },
      .on_reset = [s](uint64_t) { s->done = true; },
      .on_writable = nullptr,
      .on_closed = [s] { s->done = true; },
  });
  if (!s->ns.leftover.empty()) {
    Bytes first = std::move(s->ns.leftover);
    on_bytes(first);
  }
}

}  // namespace punchgate
