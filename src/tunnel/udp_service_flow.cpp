#include "tunnel/udp_service_flow.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/tunnel/tunnel_negotiation.hpp"

#include <array>

namespace punchgate {

namespace {

constexpr size_t kMaxDatagram = 65535;

char* shared_datagram_buffer() {
  static std::array<char, kMaxDatagram> buf;
  return buf.data();
}

}  // namespace

UdpServiceFlow::UdpServiceFlow(uv_loop_t* loop, StreamPtr stream, DoneFn done)
    : loop_(loop), stream_(std::move(stream)), done_(std::move(done)), idle_(loop) {}

Result<std::shared_ptr<UdpServiceFlow>> UdpServiceFlow::start(uv_loop_t* loop, StreamPtr stream,
                                                              const SockAddr& target, Bytes initial, DoneFn done) {
  auto f = std::make_shared<UdpServiceFlow>(loop, std::move(stream), std::move(done));
  PG_TRY(f->open(target));
  std::weak_ptr<UdpServiceFlow> weak = f;
  f->stream_->set_handlers({
      .on_data = [weak](BytesView d) { if (auto s = weak.lock()) s->on_stream_data(d); },
      .on_fin = [weak] { if (auto s = weak.lock()) s->close("client closed the flow"); },
      .on_reset = [weak](uint64_t) { if (auto s = weak.lock()) s->close("stream reset"); },
      .on_writable = nullptr,
      .on_closed = [weak] { if (auto s = weak.lock()) s->close("stream closed"); },
  });
  f->touch();
  f->idle_.start(kUdpFlowIdleMs, kUdpFlowIdleMs / 4, [weak] {
    auto s = weak.lock();
    if (s && uv_now(s->loop_) - s->last_activity_ >= kUdpFlowIdleMs) s->close("idle timeout");
  });
  if (!initial.empty()) f->on_stream_data(initial);
  return f;
}

Status UdpServiceFlow::open(const SockAddr& target) {
  if (int rv = uv_udp_init(loop_, udp_.get()); rv != 0) return make_error("udp socket: {}", uv_strerror(rv));
  udp_.mark_initialised();
  udp_.get()->data = this;
  if (int rv = uv_udp_connect(udp_.get(), target.get()); rv != 0) {
    return make_error("cannot reach {}: {}", target.to_string(), uv_strerror(rv));
  }
  int rv = uv_udp_recv_start(
      udp_.get(),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        buf->base = shared_datagram_buffer();
        buf->len = kMaxDatagram;
      },
      [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
        auto* self = static_cast<UdpServiceFlow*>(h->data);
        if (!self || n < 0 || !from) return;
        self->on_datagram(BytesView(buf->base, static_cast<size_t>(n)));
      });
  if (rv != 0) return make_error("udp receive: {}", uv_strerror(rv));
  return {};
}

void UdpServiceFlow::touch() { last_activity_ = uv_now(loop_); }

void UdpServiceFlow::on_stream_data(BytesView d) {
  if (closed_) return;
  rx_.append(d);
  std::vector<Bytes> datagrams;
  take_datagrams(rx_, datagrams);
  for (const Bytes& dg : datagrams) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(dg.data()), static_cast<unsigned>(dg.size()));
    // Connected socket: no address. A full socket buffer drops the datagram, as UDP would.
    if (uv_udp_try_send(udp_.get(), &b, 1, nullptr) >= 0) to_target_ += dg.size();
  }
  if (!datagrams.empty()) touch();
  if (rx_.size() > 2 * (kMaxDatagram + 2)) close("framing error");  // cannot happen with valid frames
}

void UdpServiceFlow::on_datagram(BytesView d) {
  if (closed_) return;
  Bytes framed = frame_datagram(d);
  // Never split a datagram: if the stream cannot take all of it now, drop it (UDP semantics).
  if (stream_->write_capacity() < framed.size()) return;
  stream_->write(framed);
  from_target_ += d.size();
  touch();
}

void UdpServiceFlow::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  auto keep = shared_from_this();
  idle_.stop();
  udp_.close();
  stream_->shutdown_write();
  stream_->set_handlers({});
  if (done_) {
    auto fn = std::move(done_);
    fn(this, reason);
  }
}

}  // namespace punchgate
