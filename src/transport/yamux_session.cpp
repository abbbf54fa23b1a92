#include "transport/yamux_session.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace punchgate {

namespace {

constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

const char* type_name(YamuxType t) {
  switch (t) {
    case YamuxType::Data: return "data";
    case YamuxType::WindowUpdate: return "window update";
    case YamuxType::Ping: return "ping";
    case YamuxType::GoAway: return "go away";
  }
  return "?";
}

YamuxConfig sanitized(YamuxConfig c) {
  c.receive_window = std::max(c.receive_window, kYamuxInitialWindow);
  c.max_frame_data = std::max<uint32_t>(c.max_frame_data, 1);
  c.output_hard_limit = std::max(c.output_hard_limit, c.output_high_water + 64 * 1024);
  return c;
}

}  // namespace

YamuxSession::YamuxSession(YamuxRole role, YamuxConfig config)
    : role_(role), config_(sanitized(config)), next_id_(role == YamuxRole::Client ? 1 : 2) {}

// ---- Helpers ----

YamuxSession::Stream* YamuxSession::find(StreamId id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

YamuxSession::Stream* YamuxSession::live(StreamId id) {
  Stream* s = find(id);
  return s && !s->closed ? s : nullptr;
}

const YamuxSession::Stream* YamuxSession::live(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() || it->second.closed ? nullptr : &it->second;
}

bool YamuxSession::is_inbound_id(StreamId id) const { return (id % 2 == 1) == (role_ == YamuxRole::Server); }

void YamuxSession::push(YamuxEventKind kind, StreamId id, uint32_t value) {
  YamuxEvent e;
  e.kind = kind;
  e.stream_id = id;
  e.value = value;
  events_.push_back(std::move(e));
}

void YamuxSession::send_control(YamuxType type, uint16_t flags, StreamId id, uint32_t length) {
  append_yamux_header(output_, {type, flags, id, length});
}

uint16_t YamuxSession::take_ack(StreamId id, Stream& s) {
  if (!s.ack_pending) return 0;
  s.ack_pending = false;
  const uint32_t extra = config_.receive_window - kYamuxInitialWindow;
  if (extra == 0) return kYamuxAck;
  // The ACK must carry the delta to our larger window, which a Data frame cannot: send it alone.
  send_control(YamuxType::WindowUpdate, kYamuxAck, id, extra);
  return 0;
}

void YamuxSession::maybe_close(StreamId id, Stream& s) {
  if (s.closed || !(s.reset || (s.send_closed && s.recv_closed))) return;
  s.closed = true;
  s.want_writable = false;
  push(YamuxEventKind::StreamClosed, id);
}

void YamuxSession::maybe_writable(StreamId id, Stream& s) {
  if (!s.want_writable || s.writable_queued || s.closed || s.send_closed || s.send_window == 0 || output_blocked())
    return;
  s.want_writable = false;
  s.writable_queued = true;
  push(YamuxEventKind::Writable, id);
}

void YamuxSession::wake_writers() {
  if (writers_waiting_.empty() || output_blocked()) return;
  std::vector<StreamId> still;
  for (StreamId id : writers_waiting_) {
    Stream* s = live(id);
    if (!s) continue;
    maybe_writable(id, *s);
    if (s->want_writable)
      still.push_back(id);
    else
      s->waiting_output = false;
  }
  writers_waiting_.swap(still);
}

void YamuxSession::reset_by_peer(StreamId id, Stream& s) {
  s.reset = true;
  s.rx.clear();
  push(YamuxEventKind::Reset, id);
  maybe_close(id, s);
}

void YamuxSession::on_fin(StreamId id, Stream& s) {
  if (s.recv_closed) return;
  s.recv_closed = true;
  push(YamuxEventKind::Fin, id);
  maybe_close(id, s);
}

Error YamuxSession::fail(YamuxGoAwayCode code, std::string message) {
  if (failed_) return Error{error_};
  failed_ = true;
  error_ = "yamux: " + message;
  send_control(YamuxType::GoAway, 0, 0, static_cast<uint32_t>(code));
  local_go_away_ = true;
  in_body_ = false;
  YamuxEvent e;
  e.kind = YamuxEventKind::SessionError;
  e.message = error_;
  events_.push_back(std::move(e));
  for (auto& [id, s] : streams_) {
    if (!s.closed) reset_by_peer(id, s);
  }
  return Error{error_};
}

// ---- Receiving ----

Status YamuxSession::feed(BytesView data) {
  if (failed_) return Error{error_};
  while (!data.empty()) {
    if (in_body_) {
      const size_t take = std::min<size_t>(body_left_, data.size());
      on_body(data.substr(0, take));
      data.remove_prefix(take);
      body_left_ -= static_cast<uint32_t>(take);
      if (body_left_ == 0) end_data_frame();
      continue;
    }
    const size_t take = std::min(kYamuxHeaderLen - header_have_, data.size());
    std::memcpy(header_ + header_have_, data.data(), take);
    header_have_ += take;
    data.remove_prefix(take);
    if (header_have_ < kYamuxHeaderLen) break;
    header_have_ = 0;
    auto h = decode_yamux_header(view_of(header_, kYamuxHeaderLen));
    if (!h) return fail(YamuxGoAwayCode::ProtocolError, h.error().message);
    PG_TRY(on_header(*h));
    // Pongs and RSTs are owed to the peer whatever our socket does; a peer that provokes them
    // faster than we can send is not tolerated.
    if (output_size() > config_.output_hard_limit)
      return fail(YamuxGoAwayCode::InternalError,
                  fmt::format("{} bytes of output not taken while the peer keeps sending", output_size()));
  }
  return {};
}

Status YamuxSession::on_header(const YamuxHeader& h) {
  switch (h.type) {
    case YamuxType::Ping:
      if (h.has(kYamuxAck)) {
        auto it = std::find(pings_out_.begin(), pings_out_.end(), h.length);
        if (it != pings_out_.end()) {
          pings_out_.erase(it);
          push(YamuxEventKind::PingAck, 0, h.length);
        }
      } else {
        send_control(YamuxType::Ping, kYamuxAck, 0, h.length);
      }
      return {};
    case YamuxType::GoAway:
      if (!remote_go_away_) {
        remote_go_away_ = true;
        push(YamuxEventKind::GoAway, 0, h.length);
      }
      return {};
    case YamuxType::Data:
    case YamuxType::WindowUpdate:
      break;
  }
  return on_stream_frame(h);
}

Status YamuxSession::on_stream_frame(const YamuxHeader& h) {
  const bool is_data = h.type == YamuxType::Data;
  const StreamId id = h.stream_id;
  if (id == 0) return fail(YamuxGoAwayCode::ProtocolError, fmt::format("{} frame on stream 0", type_name(h.type)));
  // No stream's window ever exceeds the configured one, so this bounds every body up front.
  if (is_data && h.length > config_.receive_window)
    return fail(YamuxGoAwayCode::ProtocolError,
                fmt::format("data frame of {} bytes exceeds the {} byte window", h.length, config_.receive_window));

  StreamId body_target = 0;  // where a Data body goes; 0 skips it
  bool fin_after_body = false;
  if (h.has(kYamuxRst)) {
    if (Stream* s = live(id)) reset_by_peer(id, *s);
  } else {
    Stream* s = nullptr;
    if (h.has(kYamuxSyn)) {
      if (!is_inbound_id(id))
        return fail(YamuxGoAwayCode::ProtocolError, fmt::format("peer opened stream {} with our id parity", id));
      if (streams_.contains(id))
        return fail(YamuxGoAwayCode::ProtocolError, fmt::format("peer reopened stream {} still in use", id));
      if (local_go_away_ || remote_go_away_ || inbound_count_ >= config_.max_inbound_streams) {
        send_control(YamuxType::WindowUpdate, kYamuxRst, id, 0);
      } else {
        const uint64_t window = uint64_t{kYamuxInitialWindow} + (is_data ? 0 : h.length);
        if (window > kMaxU32)
          return fail(YamuxGoAwayCode::ProtocolError, fmt::format("stream {} opened with send window {}", id, window));
        Stream& ns = streams_[id];
        ns.inbound = true;
        ns.ack_pending = true;
        ns.send_window = static_cast<uint32_t>(window);
        ns.recv_window = config_.receive_window;
        ++inbound_count_;
        push(YamuxEventKind::InboundStream, id);
        s = &ns;
      }
    } else {
      s = live(id);  // anything else for an unknown stream is ignored (see header)
    }
    if (s && is_data) {
      if (s->recv_closed) {
        if (h.length > 0) {
          // Data after the peer's FIN: abort this stream, not the session.
          send_control(YamuxType::WindowUpdate, kYamuxRst, id, 0);
          reset_by_peer(id, *s);
        }
      } else {
        if (h.length > s->recv_window)
          return fail(YamuxGoAwayCode::ProtocolError,
                      fmt::format("stream {} sent {} bytes into a window of {}", id, h.length, s->recv_window));
        s->recv_window -= h.length;
        s->unconsumed += h.length;
        body_target = id;
        fin_after_body = h.has(kYamuxFin);
      }
    } else if (s) {
      if (!h.has(kYamuxSyn)) {
        const uint64_t window = uint64_t{s->send_window} + h.length;
        if (window > kMaxU32)
          return fail(YamuxGoAwayCode::ProtocolError, fmt::format("stream {} send window overflows: {}", id, window));
        s->send_window = static_cast<uint32_t>(window);
        maybe_writable(id, *s);
      }
      if (h.has(kYamuxFin)) on_fin(id, *s);
    }
  }
  if (is_data) {
    in_body_ = true;
    body_left_ = h.length;
    body_stream_ = body_target;
    body_fin_ = fin_after_body;
    if (body_left_ == 0) end_data_frame();
  }
  return {};
}

void YamuxSession::on_body(BytesView chunk) {
  if (body_stream_ == 0 || chunk.empty()) return;
  Stream* s = live(body_stream_);
  if (!s || s->reset) return;  // reset locally while the frame was arriving
  s->rx.append(chunk);
  if (!s->data_queued) {
    s->data_queued = true;
    push(YamuxEventKind::Data, body_stream_);
  }
}

void YamuxSession::end_data_frame() {
  in_body_ = false;
  if (body_fin_) {
    if (Stream* s = live(body_stream_)) on_fin(body_stream_, *s);
  }
  body_stream_ = 0;
  body_fin_ = false;
}

// ---- Events and output ----

std::optional<YamuxEvent> YamuxSession::poll_event() {
  while (!events_.empty()) {
    YamuxEvent e = std::move(events_.front());
    events_.pop_front();
    auto it = streams_.find(e.stream_id);
    Stream* s = e.stream_id != 0 && it != streams_.end() ? &it->second : nullptr;
    switch (e.kind) {
      case YamuxEventKind::Data:
        if (!s) continue;
        s->data_queued = false;
        if (s->reset || s->rx.empty()) {
          s->rx.clear();
          continue;
        }
        e.data = std::move(s->rx);
        s->rx.clear();
        return e;
      case YamuxEventKind::Fin:
        if (!s || s->reset) continue;
        return e;
      case YamuxEventKind::Writable:
        if (!s) continue;
        s->writable_queued = false;
        if (s->reset || s->send_closed) continue;
        return e;
      case YamuxEventKind::StreamClosed:
        if (s) {
          --(s->inbound ? inbound_count_ : outbound_count_);
          if (s->waiting_output) std::erase(writers_waiting_, e.stream_id);
          streams_.erase(it);
        }
        return e;
      default:
        return e;
    }
  }
  return std::nullopt;
}

Bytes YamuxSession::take_output() { return take_output(SIZE_MAX); }

Bytes YamuxSession::take_output(size_t max) {
  Bytes out;
  if (max >= output_size()) {
    if (output_head_ == 0) {
      out.swap(output_);
    } else {
      out.assign(output_, output_head_);
      output_.clear();
    }
    output_head_ = 0;
  } else {
    out.assign(output_, output_head_, max);
    output_head_ += max;
    // Amortised O(1) per byte: this moves no more bytes than were taken since the last move.
    if (output_head_ * 2 >= output_.size()) {
      output_.erase(0, output_head_);
      output_head_ = 0;
    }
  }
  wake_writers();
  return out;
}

// ---- Local actions ----

Result<YamuxSession::StreamId> YamuxSession::open_stream() {
  if (failed_) return Error{error_};
  if (local_go_away_ || remote_go_away_) return make_error("yamux session is going away");
  if (outbound_count_ >= config_.max_outbound_streams)
    return make_error("yamux outbound stream limit {} reached", config_.max_outbound_streams);
  if (next_id_ > kMaxU32) return make_error("yamux stream ids exhausted");
  const auto id = static_cast<StreamId>(next_id_);
  next_id_ += 2;
  Stream& s = streams_[id];
  s.recv_window = config_.receive_window;
  ++outbound_count_;
  send_control(YamuxType::WindowUpdate, kYamuxSyn, id, config_.receive_window - kYamuxInitialWindow);
  return id;
}

Result<size_t> YamuxSession::write(StreamId id, BytesView data) {
  if (failed_) return Error{error_};
  Stream* s = find(id);
  if (!s) return make_error("yamux stream {} is unknown", id);
  if (s->reset) return make_error("yamux stream {} was reset", id);
  if (s->send_closed) return make_error("yamux stream {} is shut for writing", id);
  if (data.empty()) return size_t{0};
  const size_t room = output_blocked() ? 0 : config_.output_high_water - output_size();
  const size_t n = std::min({data.size(), size_t{s->send_window}, room});
  if (n < data.size()) {
    s->want_writable = true;
    if (!s->waiting_output) {
      s->waiting_output = true;
      writers_waiting_.push_back(id);
    }
  }
  if (n == 0) return size_t{0};
  uint16_t flags = take_ack(id, *s);
  for (size_t off = 0; off < n;) {
    const size_t chunk = std::min<size_t>(n - off, config_.max_frame_data);
    append_yamux_data_frame(output_, flags, id, data.substr(off, chunk));
    flags = 0;
    off += chunk;
  }
  s->send_window -= static_cast<uint32_t>(n);
  return n;
}

Status YamuxSession::shutdown_write(StreamId id) {
  if (failed_) return Error{error_};
  Stream* s = find(id);
  if (!s) return make_error("yamux stream {} is unknown", id);
  if (s->reset) return make_error("yamux stream {} was reset", id);
  if (s->send_closed) return {};
  send_control(YamuxType::WindowUpdate, static_cast<uint16_t>(kYamuxFin | take_ack(id, *s)), id, 0);
  s->send_closed = true;
  s->want_writable = false;
  maybe_close(id, *s);
  return {};
}

Status YamuxSession::reset(StreamId id) {
  if (failed_) return {};  // every stream is already reset
  Stream* s = find(id);
  if (!s) return make_error("yamux stream {} is unknown", id);
  if (s->closed) return {};
  send_control(YamuxType::WindowUpdate, kYamuxRst, id, 0);
  s->reset = true;
  s->rx.clear();
  maybe_close(id, *s);
  return {};
}

void YamuxSession::consume(StreamId id, size_t n) {
  if (failed_) return;
  Stream* s = live(id);
  if (!s) return;
  const auto k = static_cast<uint32_t>(std::min<size_t>(n, s->unconsumed));
  s->unconsumed -= k;
  if (s->recv_closed) return;  // the peer sends no more: no credit to return
  s->to_return += k;
  // Until our ACK the peer believes the window is 256 KiB; announce the real one before waiting
  // for half of it to be consumed, or a larger window could never reach its threshold.
  if (s->ack_pending && config_.receive_window > kYamuxInitialWindow) take_ack(id, *s);
  if (s->to_return == 0 || s->to_return < config_.receive_window / 2) return;
  const uint16_t flags = take_ack(id, *s);
  send_control(YamuxType::WindowUpdate, flags, id, s->to_return);
  s->recv_window += s->to_return;
  s->to_return = 0;
}

Result<uint32_t> YamuxSession::ping() {
  if (failed_) return Error{error_};
  if (pings_out_.size() >= config_.max_pending_pings)
    return make_error("yamux: {} pings already outstanding", pings_out_.size());
  const uint32_t value = next_ping_++;
  pings_out_.push_back(value);
  send_control(YamuxType::Ping, kYamuxSyn, 0, value);
  return value;
}

void YamuxSession::go_away(YamuxGoAwayCode code) {
  if (failed_ || local_go_away_) return;
  local_go_away_ = true;
  send_control(YamuxType::GoAway, 0, 0, static_cast<uint32_t>(code));
}

// ---- Introspection ----

size_t YamuxSession::buffered_bytes() const {
  size_t n = 0;
  for (const auto& [id, s] : streams_) n += s.rx.size();
  return n;
}

std::optional<uint32_t> YamuxSession::send_window(StreamId id) const {
  const Stream* s = live(id);
  return s ? std::optional<uint32_t>(s->send_window) : std::nullopt;
}

std::optional<uint32_t> YamuxSession::receive_window(StreamId id) const {
  const Stream* s = live(id);
  return s ? std::optional<uint32_t>(s->recv_window) : std::nullopt;
}

}  // namespace punchgate
