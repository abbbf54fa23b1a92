#include "host/stream_negotiation.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/wire/multistream.hpp"

#include <memory>

namespace punchgate {

namespace {

// State shared by the stream's handlers while negotiation runs. It lives as long as those
// handlers do; finishing replaces the handlers and so releases it.
template <typename Machine, typename Done>
struct Negotiation : std::enable_shared_from_this<Negotiation<Machine, Done>> {
  Negotiation(uv_loop_t* loop, ConnectionPtr c, StreamPtr s, Machine m, Done d)
      : conn(std::move(c)), stream(std::move(s)), machine(std::move(m)), done(std::move(d)), timer(loop) {}

  ConnectionPtr conn;
  StreamPtr stream;
  Machine machine;
  Done done;
  Timer timer;
  bool finished = false;

  void begin(Bytes first) {
    auto self = this->shared_from_this();
    // The timer first: installing handlers can deliver queued bytes and finish at once.
    timer.start(kNegotiationTimeoutMs, 0, [self] { self->fail("protocol negotiation timed out"); });
    if (!first.empty()) stream->write(first);
    stream->set_handlers({
        .on_data = [self](BytesView d) { self->on_data(d); },
        .on_fin = [self] { self->fail("stream closed during protocol negotiation"); },
        .on_reset = [self](uint64_t) { self->fail("stream reset during protocol negotiation"); },
        .on_writable = nullptr,
        .on_closed = [self] { self->fail("stream closed during protocol negotiation"); },
    });
  }

  void on_data(BytesView d) {
    if (finished) return;
    MultistreamOutcome out = machine.feed(d);
    if (!out.to_send.empty()) stream->write(out.to_send);
    if (out.state == MultistreamState::Selected) {
      finish();
      NegotiatedStream ns{conn, stream, out.protocol, std::move(out.leftover)};
      stream->set_handlers({});
      deliver_ok(std::move(ns));
    } else if (out.state == MultistreamState::Failed) {
      fail(out.error);
    }
  }

  void finish() {
    finished = true;
    timer.stop();
  }

  void fail(const std::string& why) {
    if (finished) return;
    finish();
    stream->reset(0);
    stream->set_handlers({});
    deliver_error(why);
  }

  void deliver_ok(NegotiatedStream ns);
  void deliver_error(const std::string& why);
};

using OutboundDone = std::function<void(Result<NegotiatedStream>)>;
using InboundDone = std::function<void(NegotiatedStream)>;

template <>
void Negotiation<MultistreamDialer, OutboundDone>::deliver_ok(NegotiatedStream ns) {
  auto d = std::move(done);
  d(std::move(ns));
}
template <>
void Negotiation<MultistreamDialer, OutboundDone>::deliver_error(const std::string& why) {
  auto d = std::move(done);
  d(Error{why});
}
template <>
void Negotiation<MultistreamListener, InboundDone>::deliver_ok(NegotiatedStream ns) {
  auto d = std::move(done);
  d(std::move(ns));
}
template <>
void Negotiation<MultistreamListener, InboundDone>::deliver_error(const std::string& why) {
  spdlog::debug("inbound stream negotiation failed peer={} error={}", conn->remote_peer().to_base58(), why);
}

}  // namespace

void negotiate_outbound(uv_loop_t* loop, ConnectionPtr conn, StreamPtr stream, std::vector<std::string> protocols,
                        std::function<void(Result<NegotiatedStream>)> done) {
  MultistreamDialer dialer(std::move(protocols));
  Bytes first = dialer.start();
  auto n = std::make_shared<Negotiation<MultistreamDialer, OutboundDone>>(loop, std::move(conn), std::move(stream),
                                                                          std::move(dialer), std::move(done));
  n->begin(std::move(first));
}

void negotiate_inbound(uv_loop_t* loop, ConnectionPtr conn, StreamPtr stream, std::vector<std::string> supported,
                       std::function<void(NegotiatedStream)> done) {
  MultistreamListener listener(std::move(supported));
  auto n = std::make_shared<Negotiation<MultistreamListener, InboundDone>>(loop, std::move(conn), std::move(stream),
                                                                           std::move(listener), std::move(done));
  n->begin({});
}

}  // namespace punchgate
