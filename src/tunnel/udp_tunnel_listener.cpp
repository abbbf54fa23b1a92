#include "tunnel/udp_tunnel_listener.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/tunnel/tunnel_negotiation.hpp"
#include "tunnel/exposed_services.hpp"
#include "tunnel/tunnel_handshake.hpp"
#include "tunnel/udp_service_flow.hpp"

#include <array>

namespace punchgate {

namespace {

constexpr size_t kMaxDatagram = 65535;

}  // namespace

struct UdpTunnelListener::Flow {
  StreamPtr stream;
  bool ready = false;
  bool failed = false;  // rejected or unreachable: drop datagrams until the flow expires
  bool lost = false;    // the stream ended: the next datagram opens a new flow
  std::deque<Bytes> queue;
  Bytes rx;
  uint64_t last_activity = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
  PeerId peer;  // the provider this flow went to
};

UdpTunnelListener::UdpTunnelListener(Host& host, std::unique_ptr<TunnelTarget> target, TunnelSpec spec)
    : host_(host), target_(std::move(target)), spec_(std::move(spec)), sweep_(host.loop()) {}

UdpTunnelListener::~UdpTunnelListener() { shutdown(); }

Status UdpTunnelListener::listen() {
  auto addr = SockAddr::from_ip(spec_.bind.host, spec_.bind.port);
  if (!addr) return make_error("tunnel {}: bind host must be an IP address: {}", spec_.to_string(), addr.error().message);
  uv_udp_init(host_.loop(), udp_.get());
  udp_.mark_initialised();
  udp_.get()->data = this;
  if (int rv = uv_udp_bind(udp_.get(), addr->get(), 0); rv != 0) {
    return make_error("tunnel {}: cannot bind {}: {}", spec_.to_string(), spec_.bind.to_string(), uv_strerror(rv));
  }
  uv_udp_recv_start(
      udp_.get(),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static std::array<char, kMaxDatagram> storage;
        buf->base = storage.data();
        buf->len = storage.size();
      },
      [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
        auto* self = static_cast<UdpTunnelListener*>(h->data);
        if (!self || n < 0 || !from) return;
        self->on_datagram(SockAddr::from(from), BytesView(buf->base, static_cast<size_t>(n)));
      });
  sweep_.start(kUdpFlowIdleMs / 4, kUdpFlowIdleMs / 4, [this] { expire_idle(); });
  spdlog::info("tunnel listening bind={}/udp peer={} service={}", spec_.bind.to_string(),
               spec_.peer.empty() ? "by-name" : spec_.peer.to_base58(), spec_.service);
  return {};
}

void UdpTunnelListener::shutdown() {
  *alive_ = false;
  sweep_.stop();
  udp_.close();
  for (auto& [addr, f] : flows_) {
    if (f->stream) {
      f->stream->set_handlers({});
      f->stream->shutdown_write();
    }
  }
  flows_.clear();
}

TrafficStats UdpTunnelListener::stats() const {
  TrafficStats s = finished_;
  for (const auto& [addr, f] : flows_) {
    ++s.active;
    s.bytes_sent += f->sent;
    s.bytes_received += f->received;
  }
  return s;
}

void UdpTunnelListener::retire(const Flow& f) {
  finished_.bytes_sent += f.sent;
  finished_.bytes_received += f.received;
}

void UdpTunnelListener::on_datagram(const SockAddr& from, BytesView d) {
  auto it = flows_.find(from);
  if (it != flows_.end() && it->second->lost) {
    retire(*it->second);
    flows_.erase(it);
    it = flows_.end();
  }
  if (it == flows_.end()) {
    if (flows_.size() >= kMaxFlows) return;
    auto flow = std::make_shared<Flow>();
    it = flows_.emplace(from, flow).first;
    ++finished_.total;
    open_flow(from, flow);
  }
  Flow& f = *it->second;
  f.last_activity = uv_now(host_.loop());
  if (f.failed) return;
  if (!f.ready) {
    if (f.queue.size() < kMaxQueuedDatagrams) f.queue.emplace_back(d);
    return;
  }
  Bytes framed = frame_datagram(d);
  if (f.stream->write_capacity() < framed.size()) return;  // congested: drop, as UDP would
  f.stream->write(framed);
  f.sent += d.size();
}

void UdpTunnelListener::open_flow(const SockAddr& from, const std::shared_ptr<Flow>& flow) {
  std::weak_ptr<Flow> weak = flow;
  auto fail = [this, alive = alive_, service = spec_.service, weak](const std::string& why, bool rejected) {
    if (!*alive) return;
    std::string peer = target_->peer_text();
    if (auto f = weak.lock()) f->failed = true;
    // Logged once per flow; the flow then drops datagrams until it expires.
    spdlog::warn("{} peer={} service={} transport=udp reason={}",
                 rejected ? "tunnel rejected" : "client tunnel failed", peer, service, log_quote(why));
  };
  target_->connect([this, alive = alive_, from, weak, fail](Result<ConnectionPtr> conn) {
    if (!*alive || weak.expired()) return;
    if (!conn) return fail(conn.error().message, false);
    PeerId peer = (*conn)->remote_peer();
    host_.open_stream(*conn, {std::string(kUdpTunnelProtocol)}, [this, alive, from, weak, fail, peer](
                                                                      Result<NegotiatedStream> ns) {
      if (!*alive) return;
      if (!ns) {
        target_->failed(peer);  // the flow fails; the next flow may go to another provider
        return fail(ns.error().message, false);
      }
      auto f0 = weak.lock();
      if (!f0) return ns->stream->reset(0);
      request_tunnel(host_, ns->stream, std::move(ns->leftover), spec_.service,
                     [this, alive, from, weak, fail, peer](Result<OpenedTunnel> t, bool rejected) {
                       if (!*alive) return;
                       if (!t) {
                         target_->failed(peer);
                         return fail(t.error().message, rejected);
                       }
                       auto f = weak.lock();
                       if (!f) return t->stream->reset(0);
                       f->stream = t->stream;
                       f->ready = true;
                       f->peer = peer;
                       spdlog::info("client tunnel opened peer={} service={} transport=udp client={}",
                                    peer.to_base58(), spec_.service, from.to_string());
                       Flow* raw = f.get();
                       f->stream->set_handlers({
                           .on_data = [this, from, weak](BytesView d) {
                             if (auto fl = weak.lock()) on_stream_data(from, *fl, d);
                           },
                           .on_fin = [weak] { if (auto fl = weak.lock()) fl->lost = true; },
                           .on_reset = [weak](uint64_t) { if (auto fl = weak.lock()) fl->lost = true; },
                           .on_writable = nullptr,
                           .on_closed = nullptr,
                       });
                       if (!t->rest.empty()) on_stream_data(from, *raw, t->rest);
                       for (const Bytes& d : f->queue) {
                         f->stream->write(frame_datagram(d));
                         f->sent += d.size();
                       }
                       f->queue.clear();
                     });
    });
  });
}

void UdpTunnelListener::on_stream_data(const SockAddr& from, Flow& flow, BytesView d) {
  flow.rx.append(d);
  std::vector<Bytes> datagrams;
  take_datagrams(flow.rx, datagrams);
  for (const Bytes& dg : datagrams) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(dg.data()), static_cast<unsigned>(dg.size()));
    if (uv_udp_try_send(udp_.get(), &b, 1, from.get()) >= 0) flow.received += dg.size();
  }
  if (!datagrams.empty()) flow.last_activity = uv_now(host_.loop());
}

void UdpTunnelListener::expire_idle() {
  uint64_t now = uv_now(host_.loop());
  for (auto it = flows_.begin(); it != flows_.end();) {
    Flow& f = *it->second;
    if (now - f.last_activity < kUdpFlowIdleMs) {
      ++it;
      continue;
    }
    spdlog::info("client tunnel closed peer={} service={} transport=udp client={} bytes_sent={} bytes_received={} "
                 "reason=\"idle timeout\"",
                 f.peer.empty() ? target_->peer_text() : f.peer.to_base58(), spec_.service, it->first.to_string(), f.sent,
                 f.received);
    if (f.stream) {
      f.stream->set_handlers({});
      f.stream->shutdown_write();
    }
    retire(f);
    it = flows_.erase(it);
  }
}

}  // namespace punchgate
