#include "tunnel/tcp_tunnel_listener.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "tunnel/tunnel_handshake.hpp"

namespace punchgate {

TcpTunnelListener::TcpTunnelListener(Host& host, std::unique_ptr<TunnelTarget> target, TunnelSpec spec)
    : host_(host), target_(std::move(target)), spec_(std::move(spec)) {}

TcpTunnelListener::~TcpTunnelListener() { shutdown(); }

Status TcpTunnelListener::listen() {
  auto addr = SockAddr::from_ip(spec_.bind.host, spec_.bind.port);
  if (!addr) return make_error("tunnel {}: bind host must be an IP address: {}", spec_.to_string(), addr.error().message);
  uv_tcp_init(host_.loop(), server_.get());
  server_.mark_initialised();
  server_.get()->data = this;
  if (int rv = uv_tcp_bind(server_.get(), addr->get(), 0); rv != 0) {
    return make_error("tunnel {}: cannot bind {}: {}", spec_.to_string(), spec_.bind.to_string(), uv_strerror(rv));
  }
  int rv = uv_listen(reinterpret_cast<uv_stream_t*>(server_.get()), 1024, [](uv_stream_t* s, int status) {
    auto* self = static_cast<TcpTunnelListener*>(s->data);
    if (self && status == 0) self->on_accept();
  });
  if (rv != 0) {
    return make_error("tunnel {}: cannot listen on {}: {}", spec_.to_string(), spec_.bind.to_string(), uv_strerror(rv));
  }
  spdlog::info("tunnel listening bind={} peer={} service={}", spec_.bind.to_string(),
               spec_.peer.empty() ? "by-name" : spec_.peer.to_base58(), spec_.service);
  return {};
}

void TcpTunnelListener::shutdown() {
  *alive_ = false;
  server_.close();
  auto bridges = std::move(bridges_);
  bridges_.clear();
  for (auto& b : bridges) b->abort("shutting down");
}

TrafficStats TcpTunnelListener::stats() const {
  TrafficStats s = finished_;
  for (const auto& b : bridges_) {
    ++s.active;
    s.bytes_sent += b->stats().bytes_to_stream;
    s.bytes_received += b->stats().bytes_from_stream;
  }
  return s;
}

void TcpTunnelListener::on_accept() {
  auto client = std::make_shared<UvHandle<uv_tcp_t>>();
  uv_tcp_init(host_.loop(), client->get());
  client->mark_initialised();
  if (uv_accept(reinterpret_cast<uv_stream_t*>(server_.get()), reinterpret_cast<uv_stream_t*>(client->get())) != 0) {
    return;
  }
  open_tunnel(std::move(client), 0);
}

void TcpTunnelListener::open_tunnel(std::shared_ptr<UvHandle<uv_tcp_t>> client, int attempt) {
  auto fail = [service = spec_.service](const std::string& peer, const std::shared_ptr<UvHandle<uv_tcp_t>>& c,
                                        const std::string& why) {
    spdlog::warn("client tunnel failed peer={} service={} reason={}", peer, service, log_quote(why));
    c->close();
  };
  // A stream or tunnel request that failed on `c`: a connection that died unnoticed (e.g. the
  // peer restarted) is retried on a fresh one, or on another provider when the target has one.
  auto retry_or_fail = [this, client, attempt, fail](const ConnectionPtr& c, const std::string& peer,
                                                     const std::string& why) {
    bool elsewhere = target_->failed(c->remote_peer());
    if (attempt + 1 < kMaxTunnelAttempts && (c->is_closed() || elsewhere)) {
      spdlog::info("client tunnel retrying peer={} service={} reason={}", peer, spec_.service, log_quote(why));
      return open_tunnel(client, attempt + 1);
    }
    fail(peer, client, why);
  };
  target_->connect([this, alive = alive_, client, fail, retry_or_fail](Result<ConnectionPtr> conn) {
    if (!*alive) return;
    if (!conn) return fail(target_->peer_text(), client, conn.error().message);
    ConnectionPtr c = *conn;
    std::string peer = c->remote_peer().to_base58();
    host_.open_stream(c, {std::string(kTunnelProtocol)}, [this, alive, client, retry_or_fail, peer, c](
                                                             Result<NegotiatedStream> ns) {
      if (!*alive) return;
      if (!ns) return retry_or_fail(c, peer, ns.error().message);
      request_tunnel(host_, ns->stream, std::move(ns->leftover), spec_.service,
                     [this, alive, client, retry_or_fail, peer, c](Result<OpenedTunnel> t, bool rejected) {
                       if (!*alive) return;
                       if (!t) {
                         if (rejected) {
                           spdlog::warn("tunnel rejected peer={} service={} reason={}", peer, spec_.service,
                                        log_quote(t.error().message));
                           // A provider that refuses (service gone) is passed over next time.
                           target_->failed(c->remote_peer());
                           client->close();
                           return;
                         }
                         return retry_or_fail(c, peer, t.error().message);
                       }
                       spdlog::info("client tunnel opened peer={} service={} bind={}", peer, spec_.service,
                                    spec_.bind.to_string());
                       auto holder = std::make_shared<std::shared_ptr<TcpBridge>>();
                       auto bridge = TcpBridge::start(
                           std::move(*client), t->stream, std::move(t->rest),
                           [this, alive, peer, service = spec_.service, holder](const BridgeStats& st,
                                                                                 const std::string& reason) {
                             spdlog::info("client tunnel closed peer={} service={} bytes_sent={} bytes_received={} "
                                          "reason={}",
                                          peer, service, st.bytes_to_stream, st.bytes_from_stream, log_quote(reason));
                             if (*alive) {
                               finished_.bytes_sent += st.bytes_to_stream;
                               finished_.bytes_received += st.bytes_from_stream;
                               if (*holder) bridges_.erase(*holder);
                             }
                             holder->reset();
                           });
                       ++finished_.total;
                       if (!bridge->finished()) {
                         *holder = bridge;
                         bridges_.insert(bridge);
                       }
                     });
    });
  });
}

}  // namespace punchgate
