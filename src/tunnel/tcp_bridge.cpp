#include "tunnel/tcp_bridge.hpp"

#include "punchgate/core/log.hpp"

#include <array>

namespace punchgate {

namespace {

constexpr size_t kReadBuffer = 64 * 1024;
// Application error code for a stream reset caused by the TCP side failing.
constexpr uint64_t kTcpErrorCode = 1;

// Reads go straight into the stream's send buffer, so one buffer for the whole loop suffices.
char* shared_read_buffer() {
  static std::array<char, kReadBuffer> buf;
  return buf.data();
}

}  // namespace

struct TcpBridge::ShutdownReq {
  uv_shutdown_t req{};
  std::weak_ptr<TcpBridge> owner;
};

struct TcpBridge::WriteReq {
  uv_write_t req{};
  std::weak_ptr<TcpBridge> owner;
  Bytes data;
  bool consume = true;
};

std::shared_ptr<TcpBridge> TcpBridge::start(std::unique_ptr<LocalEnd> local, StreamPtr stream, Bytes initial,
                                            DoneFn done) {
  auto b = std::make_shared<TcpBridge>(std::move(local), std::move(stream), std::move(done));
  b->begin(std::move(initial));
  return b;
}

TcpBridge::TcpBridge(std::unique_ptr<LocalEnd> local, StreamPtr stream, DoneFn done)
    : local_(std::move(local)), stream_(std::move(stream)), done_(std::move(done)) {}

void TcpBridge::begin(Bytes initial) {
  self_ = shared_from_this();
  local_->reader()->data = this;
  local_->writer()->data = this;
  std::weak_ptr<TcpBridge> weak = self_;
  // Bytes that came with the negotiation go out first: installing the handlers can deliver a
  // FIN at once, which shuts our write side. They were consumed by the negotiation reader.
  if (!initial.empty()) write_local(initial, false);
  stream_->set_manual_consume(true);
  stream_->set_handlers({
      .on_data = [weak](BytesView d) { if (auto s = weak.lock()) s->on_stream_data(d); },
      .on_fin = [weak] { if (auto s = weak.lock()) s->on_stream_fin(); },
      .on_reset = [weak](uint64_t code) { if (auto s = weak.lock()) s->on_stream_reset(code); },
      .on_writable = [weak] { if (auto s = weak.lock()) s->flush_pending_to_stream(); },
      .on_closed =
          [weak] {
            if (auto s = weak.lock()) {
              s->stream_closed_ = true;
              s->maybe_finish();
            }
          },
  });
  start_reading();
}

void TcpBridge::start_reading() {
  if (reading_ || tcp_eof_ || finished_) return;
  reading_ = true;
  uv_read_start(
      local_->reader(),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        buf->base = shared_read_buffer();
        buf->len = kReadBuffer;
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        if (auto* self = static_cast<TcpBridge*>(s->data)) self->on_tcp_read(n, buf);
      });
}

void TcpBridge::on_tcp_read(ssize_t n, const uv_buf_t* buf) {
  if (finished_) return;
  if (n == 0) return;
  if (n == UV_EOF) {
    tcp_eof_ = true;
    reading_ = false;
    uv_read_stop(local_->reader());
    flush_pending_to_stream();
    return;
  }
  if (n < 0) {
    stream_->reset(kTcpErrorCode);
    finish(fmt::format("tcp error: {}", uv_strerror(static_cast<int>(n))));
    return;
  }
  BytesView data(buf->base, static_cast<size_t>(n));
  size_t took = stream_->write(data);
  stats_.bytes_to_stream += took;
  if (took < data.size()) {
    // The stream is full: keep the rest and stop reading until it drains.
    pending_.append(data.substr(took));
    reading_ = false;
    uv_read_stop(local_->reader());
  }
}

void TcpBridge::flush_pending_to_stream() {
  if (finished_) return;
  if (!pending_.empty()) {
    size_t took = stream_->write(pending_);
    stats_.bytes_to_stream += took;
    pending_.erase(0, took);
    if (!pending_.empty()) return;  // on_writable fires again
  }
  if (tcp_eof_) {
    if (!stream_fin_sent_) {
      stream_fin_sent_ = true;
      stream_->shutdown_write();
    }
    maybe_finish();
    return;
  }
  start_reading();
}

void TcpBridge::on_stream_data(BytesView d) { write_local(d, true); }

void TcpBridge::write_local(BytesView d, bool consume) {
  if (finished_) return;
  auto req = std::make_unique<WriteReq>();
  req->owner = self_;
  req->consume = consume;
  req->data.assign(d);
  uv_buf_t b = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  req->req.data = req.get();
  int rv = uv_write(&req->req, local_->writer(), &b, 1, [](uv_write_t* w, int status) {
    std::unique_ptr<WriteReq> owned(static_cast<WriteReq*>(w->data));
    if (auto s = owned->owner.lock()) s->on_write_done(owned->data.size(), status, owned->consume);
  });
  if (rv != 0) {
    stream_->reset(kTcpErrorCode);
    finish(fmt::format("tcp write error: {}", uv_strerror(rv)));
    return;
  }
  req.release();  // owned by libuv until the write callback
  ++writes_in_flight_;
}

void TcpBridge::on_write_done(size_t n, int status, bool consume) {
  --writes_in_flight_;
  if (finished_) return;
  if (status != 0) {
    stream_->reset(kTcpErrorCode);
    finish(fmt::format("tcp write error: {}", uv_strerror(status)));
    return;
  }
  stats_.bytes_from_stream += n;
  if (consume) stream_->consume(n);  // reopen the peer's window only now: this is the backpressure
}

void TcpBridge::on_stream_fin() {
  if (finished_) return;
  stream_fin_ = true;
  // uv_shutdown waits for queued writes, so the FIN follows every byte.
  auto req = std::make_unique<ShutdownReq>();
  req->owner = self_;
  req->req.data = req.get();
  int rv = uv_shutdown(&req->req, local_->writer(), [](uv_shutdown_t* r, int status) {
    std::unique_ptr<ShutdownReq> owned(static_cast<ShutdownReq*>(r->data));
    auto s = owned->owner.lock();
    if (!s || s->finished_) return;
    // ENOTSOCK: stdout is a pipe, which has no half-close; the queued bytes are written.
    if (status != 0 && status != UV_ENOTSOCK) {
      s->stream_->reset(kTcpErrorCode);
      s->finish(fmt::format("tcp shutdown error: {}", uv_strerror(status)));
      return;
    }
    s->tcp_shutdown_ = true;
    s->maybe_finish();
  });
  if (rv != 0) {
    stream_->reset(kTcpErrorCode);
    finish(fmt::format("tcp shutdown error: {}", uv_strerror(rv)));
    return;
  }
  req.release();  // owned by libuv until the callback
}

void TcpBridge::on_stream_reset(uint64_t code) {
  if (finished_) return;
  // Mirror the abort: an RST on the TCP side tells the local application the same thing.
  local_->close_reset();
  finish(fmt::format("stream reset by peer (code {})", code));
}

void TcpBridge::maybe_finish() {
  if (finished_) return;
  bool to_stream_done = tcp_eof_ && pending_.empty() && stream_fin_sent_;
  bool from_stream_done = stream_fin_ && tcp_shutdown_;
  if (to_stream_done && from_stream_done) {
    finish("closed");
  } else if (stream_closed_ && !stream_fin_) {
    // The stream ended without the peer's FIN: it was aborted (on_reset normally comes first).
    local_->close_reset();
    finish("stream closed");
  }
}

void TcpBridge::abort(const std::string& reason) {
  if (finished_) return;
  stream_->reset(0);
  finish(reason);
}

void TcpBridge::finish(const std::string& reason) {
  if (finished_) return;
  finished_ = true;
  auto keep = self_;
  self_.reset();
  pending_.clear();
  local_->close();
  stream_->set_handlers({});
  if (done_) {
    auto fn = std::move(done_);
    fn(stats_, reason);
  }
}

}  // namespace punchgate
