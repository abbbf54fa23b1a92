#include "tunnel/tunnel_handshake.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"

#include <memory>

namespace punchgate {

namespace {

// Reads one length-prefixed JSON message from a stream, then calls `on_message` once.
struct MessageRead : std::enable_shared_from_this<MessageRead> {
  MessageRead(uv_loop_t* loop, StreamPtr s) : stream(std::move(s)), timer(loop) {}
  StreamPtr stream;
  TunnelMessageReader reader;
  Timer timer;
  bool done = false;
  std::function<void(Result<Bytes>, Bytes rest)> on_message;

  void start(Bytes leftover) {
    auto self = shared_from_this();
    // The timer first: installing handlers can deliver queued bytes and finish at once.
    timer.start(kTunnelHandshakeTimeoutMs, 0, [self] { self->fail("timed out waiting for the tunnel message"); });
    stream->set_handlers({
        .on_data = [self](BytesView d) { self->feed(d); },
        .on_fin = [self] { self->fail("stream finished before the tunnel message"); },
        .on_reset = [self](uint64_t) { self->fail("stream reset before the tunnel message"); },
        .on_writable = nullptr,
        .on_closed = [self] { self->fail("stream closed before the tunnel message"); },
    });
    if (!leftover.empty()) feed(leftover);
  }

  void feed(BytesView d) {
    if (done) return;
    auto r = reader.feed(d);
    if (!r) return fail(r.error().message);
    if (!*r) return;
    finish();
    auto fn = std::move(on_message);
    fn(std::move(**r), reader.take_rest());
  }

  void finish() {
    done = true;
    timer.stop();
    stream->set_handlers({});
  }

  void fail(const std::string& why) {
    if (done) return;
    finish();
    auto fn = std::move(on_message);
    fn(Error{why}, {});
  }
};

}  // namespace

void request_tunnel(Host& host, StreamPtr stream, Bytes leftover, const std::string& service,
                    std::function<void(Result<OpenedTunnel>, bool rejected)> done) {
  Bytes req = encode_tunnel_request(TunnelRequest{service});
  if (stream->write(req) < req.size()) {
    stream->reset(0);
    return done(make_error("cannot send the tunnel request"), false);
  }
  auto read = std::make_shared<MessageRead>(host.loop(), stream);
  read->on_message = [stream, done = std::move(done)](Result<Bytes> body, Bytes rest) {
    if (!body) {
      stream->reset(0);
      return done(body.error(), false);
    }
    auto resp = decode_tunnel_response(*body);
    if (!resp) {
      stream->reset(0);
      return done(make_error("invalid tunnel response: {}", resp.error().message), false);
    }
    if (!resp->accepted) {
      stream->reset(0);
      return done(Error{resp->reason.empty() ? "rejected" : resp->reason}, true);
    }
    done(OpenedTunnel{stream, std::move(rest)}, false);
  };
  read->start(std::move(leftover));
}

void read_tunnel_request(Host& host, NegotiatedStream ns,
                         std::function<void(NegotiatedStream, TunnelRequest, Bytes rest)> done) {
  auto read = std::make_shared<MessageRead>(host.loop(), ns.stream);
  Bytes leftover = std::move(ns.leftover);
  read->on_message = [ns, done = std::move(done)](Result<Bytes> body, Bytes rest) mutable {
    std::string peer = ns.conn->remote_peer().to_base58();
    if (!body) {
      spdlog::debug("tunnel request failed peer={} error={}", peer, body.error().message);
      ns.stream->reset(0);
      return;
    }
    auto req = decode_tunnel_request(*body);
    if (!req) {
      spdlog::warn("tunnel request invalid peer={} error={}", peer, req.error().message);
      ns.stream->reset(0);
      return;
    }
    done(std::move(ns), std::move(*req), std::move(rest));
  };
  read->start(std::move(leftover));
}

}  // namespace punchgate
