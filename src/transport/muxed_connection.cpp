#include "transport/muxed_connection.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"

#include <algorithm>

namespace punchgate {

namespace {

// Drops the sent prefix of a send buffer once it is large enough for the copy to pay off.
void compact(Bytes& buf, size_t& head) {
  if (head == buf.size()) {
    buf.clear();
    head = 0;
  } else if (head > (1u << 16) && head * 2 > buf.size()) {
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(head));
    head = 0;
  }
}

}  // namespace

// ---- MuxedStream ----

MuxedStream::MuxedStream(const std::shared_ptr<MuxedConnection>& conn, uint32_t id) : conn_(conn), id_(id) {}

void MuxedStream::set_handlers(Handlers h) {
  events_.set_handlers(std::move(h));
  // Events may have arrived before the handlers (bytes right after a multistream accept).
  if (events_.pending()) {
    if (auto c = conn_.lock(); c && !c->closed_) {
      c->dirty_.insert(id_);
      c->process_soon();
    } else {
      dispatch();
    }
  }
}

size_t MuxedStream::write(BytesView data) {
  auto c = conn_.lock();
  if (!c || c->closed_ || write_shut_ || fin_requested_ || events_.closed()) return 0;
  size_t n = std::min(data.size(), kSendCapacity - unsent());
  send_.insert(send_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
  if (n < data.size()) events_.want_writable();
  if (n > 0) {
    c->writers_.insert(id_);
    c->process_soon();
  }
  return n;
}

size_t MuxedStream::write_capacity() const {
  auto c = conn_.lock();
  if (!c || c->closed_ || write_shut_ || fin_requested_ || events_.closed()) return 0;
  return kSendCapacity - unsent();
}

void MuxedStream::shutdown_write() {
  auto c = conn_.lock();
  if (!c || c->closed_ || fin_requested_ || write_shut_ || events_.closed()) return;
  fin_requested_ = true;
  c->writers_.insert(id_);
  c->process_soon();
}

void MuxedStream::reset(uint64_t /*code: yamux RST carries none*/) {
  if (events_.closed()) return;
  write_shut_ = true;
  send_.clear();
  send_head_ = 0;
  auto c = conn_.lock();
  if (!c || c->closed_) return;
  (void)c->session_.mux().reset(id_);
  c->process_soon();
}

void MuxedStream::consume(size_t n) {
  if (n == 0) return;
  auto c = conn_.lock();
  if (!c || c->closed_) return;
  c->session_.mux().consume(id_, n);
  c->process_soon();  // a Window Update may be due
}

void MuxedStream::dispatch() {
  if (!events_.has_handlers()) return;
  auto self = shared_from_this();  // a handler may drop the last outside reference
  events_.dispatch([this] { return !write_shut_ && unsent() <= kSendCapacity / 2; },
                   [this](size_t n) { consume(n); });
}

// ---- MuxedConnection ----

MuxedConnection::MuxedConnection(uv_loop_t* loop, StreamPtr carrier, SecureMuxSession session, Info info,
                                 ReadyFn ready)
    : loop_(loop),
      carrier_(std::move(carrier)),
      session_(std::move(session)),
      info_(std::move(info)),
      ready_(std::move(ready)),
      id_(next_connection_serial()) {}

MuxedConnection::~MuxedConnection() = default;

void MuxedConnection::upgrade(uv_loop_t* loop, StreamPtr carrier, Bytes leftover, SecureMuxSession session,
                              Info info, ReadyFn ready) {
  uint64_t timeout = info.handshake_timeout_ms;
  auto c = std::make_shared<MuxedConnection>(loop, carrier, std::move(session), std::move(info), std::move(ready));
  c->self_ = c;  // nobody else holds it until it is ready
  c->handshake_timer_ = std::make_unique<Timer>(loop);
  c->soon_ = std::make_unique<Timer>(loop);
  std::weak_ptr<MuxedConnection> weak = c;
  c->handshake_timer_->start(timeout, 0, [weak] {
    if (auto conn = weak.lock()) conn->fail("relayed connection handshake timed out");
  });
  carrier->set_handlers({
      .on_data = [weak](BytesView d) { if (auto conn = weak.lock()) conn->on_carrier_data(d); },
      .on_fin = [weak] { if (auto conn = weak.lock()) conn->fail("relay circuit closed"); },
      .on_reset = [weak](uint64_t) { if (auto conn = weak.lock()) conn->fail("relay circuit reset"); },
      .on_writable = [weak] { if (auto conn = weak.lock()) conn->process(); },
      .on_closed = [weak] { if (auto conn = weak.lock()) conn->fail("relay circuit closed"); },
  });
  c->process();  // the dialer's first bytes
  if (!leftover.empty()) c->on_carrier_data(leftover);
}

void MuxedConnection::on_carrier_data(BytesView data) {
  if (closed_) return;
  auto keep = shared_from_this();
  Status s = session_.feed(data);
  if (!s) {
    process();  // e.g. a multistream "na" still goes out
    return fail(s.error().message);
  }
  if (ready_ && session_.ready()) {
    // Hand the connection out before its first events are handled, so inbound streams that
    // arrived with the last handshake bytes find the owner's handlers in place.
    remote_peer_ = *session_.remote_peer();
    handshake_timer_->stop();
    auto cb = std::move(ready_);
    ready_ = nullptr;
    self_.reset();
    cb(ConnectionPtr(keep));
  }
  process();
}

void MuxedConnection::process_soon() {
  if (closed_ || soon_->active()) return;
  std::weak_ptr<MuxedConnection> weak = weak_from_this();
  soon_->start(0, 0, [weak] {
    if (auto c = weak.lock()) c->process();
  });
}

void MuxedConnection::process() {
  if (processing_) {
    again_ = true;
    return;
  }
  auto keep = shared_from_this();
  processing_ = true;
  do {
    again_ = false;
    if (session_.ready()) {
      push_writes();
      handle_events();
    }
    flush_carrier();
    dispatch_streams();
  } while (!closed_ && (again_ || (session_.ready() && session_.mux().pending_events() > 0)));
  processing_ = false;
}

void MuxedConnection::push_writes() {
  YamuxSession& mux = session_.mux();
  for (auto it = writers_.begin(); it != writers_.end();) {
    auto sit = streams_.find(*it);
    if (sit == streams_.end()) {
      it = writers_.erase(it);
      continue;
    }
    MuxedStream& s = *sit->second;
    if (s.unsent() > 0) {
      auto n = mux.write(s.id_, BytesView(s.send_.data() + s.send_head_, s.unsent()));
      if (!n) {  // reset or failed: nothing more goes out on it
        s.send_.clear();
        s.send_head_ = 0;
      } else {
        s.send_head_ += *n;
        compact(s.send_, s.send_head_);
      }
      if (s.events_.wants_writable() && s.unsent() <= MuxedStream::kSendCapacity / 2) dirty_.insert(s.id_);
    }
    if (s.unsent() == 0 && s.fin_requested_ && !s.fin_sent_) {
      s.fin_sent_ = true;
      (void)mux.shutdown_write(s.id_);
    }
    if (s.unsent() == 0) {
      it = writers_.erase(it);
    } else {
      ++it;
    }
  }
}

void MuxedConnection::handle_events() {
  YamuxSession& mux = session_.mux();
  while (auto ev = mux.poll_event()) {
    auto sit = streams_.find(ev->stream_id);
    MuxedStream* s = sit == streams_.end() ? nullptr : sit->second.get();
    switch (ev->kind) {
      case YamuxEventKind::InboundStream: {
        auto stream = std::make_shared<MuxedStream>(shared_from_this(), ev->stream_id);
        streams_[ev->stream_id] = stream;
        if (handlers_.on_stream && !closed_) {
          auto fn = handlers_.on_stream;
          fn(stream);
        } else {
          (void)mux.reset(ev->stream_id);
        }
        break;
      }
      case YamuxEventKind::Data:
        if (s) {
          s->events_.push_data(ev->data);
          dirty_.insert(ev->stream_id);
        } else {
          mux.consume(ev->stream_id, ev->data.size());
        }
        break;
      case YamuxEventKind::Fin:
        if (s) {
          s->events_.push_fin();
          dirty_.insert(ev->stream_id);
        }
        break;
      case YamuxEventKind::Reset:
        if (s) {
          s->events_.push_reset(0);
          s->write_shut_ = true;
          s->send_.clear();
          s->send_head_ = 0;
          dirty_.insert(ev->stream_id);
        }
        break;
      case YamuxEventKind::Writable:
        if (s) again_ = true;  // push_writes retries it on the next round
        break;
      case YamuxEventKind::StreamClosed:
        if (s) {
          s->events_.push_closed();
          dirty_.insert(ev->stream_id);
        }
        break;
      case YamuxEventKind::PingAck:
        break;
      case YamuxEventKind::GoAway:
        spdlog::debug("relayed connection go away peer={} code={}", remote_peer_.to_base58(), ev->value);
        break;
      case YamuxEventKind::SessionError:
        return fail(fmt::format("yamux: {}", ev->message));
    }
  }
}

void MuxedConnection::flush_carrier() {
  if (!carrier_ || carrier_->is_closed()) return;
  size_t room = carrier_->write_capacity();
  if (room == 0) return;
  Bytes out = session_.take_output(room);
  if (!out.empty()) carrier_->write(out);
}

void MuxedConnection::dispatch_streams() {
  while (!dirty_.empty()) {
    uint32_t id = *dirty_.begin();
    dirty_.erase(dirty_.begin());
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    auto s = it->second;
    s->dispatch();
    if (s->events_.close_delivered()) streams_.erase(id);
  }
}

Result<StreamPtr> MuxedConnection::open_stream() {
  if (closed_) return make_error("relayed connection to {} is closed", remote_peer_.to_base58());
  if (!session_.ready()) return make_error("relayed connection is not ready");
  auto id = session_.mux().open_stream();
  if (!id) return id.error();
  auto s = std::make_shared<MuxedStream>(shared_from_this(), *id);
  streams_[*id] = s;
  process_soon();
  return StreamPtr(s);
}

void MuxedConnection::fail(const std::string& reason) {
  if (closed_) return;
  spdlog::debug("relayed connection failed peer={} reason={}", remote_peer_.to_base58(), log_quote(reason));
  close(reason);
}

void MuxedConnection::close(const std::string& reason) {
  if (closed_) return;
  if (session_.ready()) session_.mux().go_away();
  teardown(reason);
}

void MuxedConnection::teardown(const std::string& reason) {
  auto keep = shared_from_this();
  closed_ = true;
  if (handshake_timer_) handshake_timer_->stop();
  if (soon_) soon_->stop();
  // Last words (Go Away) go out, then the circuit is finished from our side.
  flush_carrier();
  if (carrier_) {
    carrier_->set_handlers({.on_data = [](BytesView) {}});  // drain whatever still arrives
    carrier_->shutdown_write();
  }
  auto streams = std::move(streams_);
  streams_.clear();
  writers_.clear();
  dirty_.clear();
  for (auto& [id, s] : streams) {
    if (!s->events_.closed() && !(s->fin_sent_ && s->events_.fin_received())) {
      s->events_.push_reset(0);
      s->write_shut_ = true;
    }
    s->events_.push_closed();
    s->dispatch();
  }
  if (ready_) {
    auto cb = std::move(ready_);
    ready_ = nullptr;
    if (carrier_) carrier_->reset(0);
    self_.reset();
    cb(make_error("{}", reason));
    return;
  }
  auto on_closed = std::move(handlers_.on_closed);
  handlers_ = {};
  if (on_closed) on_closed(reason);
}

}  // namespace punchgate
