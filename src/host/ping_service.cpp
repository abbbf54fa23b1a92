#include "punchgate/host/ping_service.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/host/ping.hpp"
#include "punchgate/host/protocol_ids.hpp"

#include <sodium.h>

#include <unordered_set>

namespace punchgate {

namespace {

constexpr uint64_t kPingTimeoutMs = 20'000;

double to_ms(PingService::Rtt d) { return std::chrono::duration<double, std::milli>(d).count(); }

// One outbound ping session: `count` payloads on one stream, one at a time.
struct PingSession : std::enable_shared_from_this<PingSession> {
  PingSession(uv_loop_t* loop, PingService::ResultFn fn) : timer(loop), cb(std::move(fn)) {}
  NegotiatedStream ns;
  PingInitiator initiator;
  Timer timer;
  PingService::ResultFn cb;
  uint32_t count = 1;
  uint32_t seq = 0;
  uint64_t interval_ms = 1000;
  bool finished = false;

  void send_next() {
    ++seq;
    auto self = shared_from_this();
    Bytes payload = initiator.next_payload(
        [](std::span<uint8_t> out) { randombytes_buf(out.data(), out.size()); }, std::chrono::steady_clock::now());
    timer.start(kPingTimeoutMs, 0, [self] { self->fail("ping timed out"); });
    ns.stream->write(payload);
  }

  void on_data(BytesView d) {
    if (finished) return;
    auto rtts = initiator.feed(d, std::chrono::steady_clock::now());
    if (!rtts) return fail(rtts.error().message);
    for (auto rtt : *rtts) {
      timer.stop();
      bool last = seq >= count;
      if (last) finish();
      cb(seq, rtt, last);
      if (last) return;
      auto self = shared_from_this();
      timer.start(interval_ms, 0, [self] { self->send_next(); });
    }
  }

  void finish() {
    finished = true;
    timer.stop();
    ns.stream->shutdown_write();
    ns.stream->set_handlers({});
  }

  void fail(const std::string& why) {
    if (finished) return;
    finish();
    ns.stream->reset(0);
    cb(seq, Error{why}, true);
  }
};

}  // namespace

PingService::PingService(Host& host, uint64_t interval_ms)
    : host_(host), interval_ms_(interval_ms), timer_(std::make_unique<Timer>(host.loop())) {
  host_.set_stream_handler(std::string(kPingProtocol),
                           [this](NegotiatedStream ns) { serve(std::move(ns.stream), std::move(ns.leftover)); });
  if (interval_ms_ > 0) timer_->start(interval_ms_, interval_ms_, [this] { ping_all(); });
}

PingService::~PingService() { *alive_ = false; }

void PingService::serve(StreamPtr stream, Bytes leftover) {
  auto responder = std::make_shared<PingResponder>();
  std::weak_ptr<Stream> weak = stream;
  auto echo = [responder, weak](BytesView d) {
    auto s = weak.lock();
    if (!s) return;
    Bytes out = responder->feed(d);
    // Each payload is 32 bytes and the peer waits for the echo, so the buffer never fills up.
    if (!out.empty() && s->write(out) < out.size()) s->reset(0);
  };
  stream->set_handlers({.on_data = echo,
                        .on_fin = [weak] { if (auto s = weak.lock()) s->shutdown_write(); },
                        .on_reset = nullptr,
                        .on_writable = nullptr,
                        .on_closed = nullptr});
  if (!leftover.empty()) echo(leftover);
}

void PingService::ping(const ConnectionPtr& conn, uint32_t count, uint64_t interval_ms, ResultFn cb) {
  // Every measured round trip is remembered per connection, for status reports.
  ResultFn recording = [this, alive = alive_, id = conn->id(), cb = std::move(cb)](uint32_t seq, Result<Rtt> rtt,
                                                                                  bool last) {
    if (*alive && rtt) last_rtt_[id] = *rtt;
    if (cb) cb(seq, std::move(rtt), last);
  };
  auto session = std::make_shared<PingSession>(host_.loop(), std::move(recording));
  session->count = std::max<uint32_t>(1, count);
  session->interval_ms = interval_ms;
  host_.open_stream(conn, {std::string(kPingProtocol)}, [session](Result<NegotiatedStream> r) {
    if (!r) {
      session->finished = true;
      session->cb(0, r.error(), true);
      return;
    }
    session->ns = std::move(*r);
    std::weak_ptr<PingSession> weak = session;
    session->ns.stream->set_handlers({
        .on_data = [session](BytesView d) { session->on_data(d); },
        .on_fin = [session] { session->fail("peer closed the ping stream"); },
        .on_reset = [session](uint64_t) { session->fail("ping stream reset"); },
        .on_writable = nullptr,
        .on_closed = [session] { session->fail("ping stream closed"); },
    });
    if (!session->ns.leftover.empty()) session->on_data(session->ns.leftover);
    session->send_next();
  });
}

std::optional<PingService::Rtt> PingService::last_rtt(const Connection& conn) const {
  auto it = last_rtt_.find(conn.id());
  if (it == last_rtt_.end()) return std::nullopt;
  return it->second;
}

void PingService::ping_all() {
  const std::vector<ConnectionPtr> conns = host_.connections();
  std::unordered_set<uint64_t> live;
  for (const ConnectionPtr& c : conns) live.insert(c->id());
  std::erase_if(last_rtt_, [&](const auto& entry) { return !live.contains(entry.first); });
  for (const ConnectionPtr& c : conns) {
    std::string peer = c->remote_peer().to_base58();
    ping(c, 1, 0, [peer](uint32_t, Result<Rtt> rtt, bool) {
      if (rtt) {
        spdlog::info("ping peer={} rtt_ms={:.3f}", peer, to_ms(*rtt));
      } else {
        spdlog::debug("ping failed peer={} error={}", peer, rtt.error().message);
      }
    });
  }
}

}  // namespace punchgate
