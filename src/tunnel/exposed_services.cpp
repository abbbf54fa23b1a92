#include "tunnel/exposed_services.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "tunnel/tcp_connect.hpp"
#include "tunnel/tunnel_handshake.hpp"
#include "tunnel/udp_service_flow.hpp"

namespace punchgate {

ExposedServices::ExposedServices(Host& host, std::vector<ExposeSpec> exposes)
    : host_(host), exposes_(std::move(exposes)) {
  host_.set_stream_handler(std::string(kTunnelProtocol), [this](NegotiatedStream ns) { on_tcp_stream(std::move(ns)); });
  host_.set_stream_handler(std::string(kUdpTunnelProtocol),
                           [this](NegotiatedStream ns) { on_udp_stream(std::move(ns)); });
}

ExposedServices::~ExposedServices() { shutdown(); }

void ExposedServices::shutdown() {
  *alive_ = false;
  auto bridges = std::move(bridges_);
  bridges_.clear();
  for (auto& b : bridges) b->abort("shutting down");
  auto flows = std::move(udp_flows_);
  udp_flows_.clear();
  for (auto& f : flows) f->close("shutting down");
}

const ExposeSpec* ExposedServices::find(const std::string& name, TunnelTransport t) const {
  for (const ExposeSpec& e : exposes_) {
    if (e.name == name && e.transport == t) return &e;
  }
  return nullptr;
}

void ExposedServices::reject(const NegotiatedStream& ns, const std::string& service, const std::string& reason) {
  // Both come (in part) from the peer: quoted and escaped so they cannot forge log lines.
  // A valid name is plain [A-Za-z0-9._-]; anything else came from the peer and is escaped.
  std::string shown = validate_service_name(service) ? service : log_quote(service);
  spdlog::warn("tunnel rejected peer={} service={} reason={}", ns.conn->remote_peer().to_base58(), shown,
               log_quote(reason));
  Bytes resp = encode_tunnel_response(TunnelResponse{false, reason});
  ns.stream->write(resp);
  ns.stream->shutdown_write();
}

void ExposedServices::on_tcp_stream(NegotiatedStream ns) {
  read_tunnel_request(host_, std::move(ns), [this, alive = alive_](NegotiatedStream s, TunnelRequest req, Bytes rest) {
    if (!*alive) return s.stream->reset(0);
    if (auto valid = validate_service_name(req.service_name); !valid) {
      return reject(s, req.service_name, "invalid service name");
    }
    spdlog::info("tunnel request peer={} service={}", s.conn->remote_peer().to_base58(), req.service_name);
    const ExposeSpec* spec = find(req.service_name, TunnelTransport::Tcp);
    if (!spec) return reject(s, req.service_name, fmt::format("unknown service {}", req.service_name));
    accept_tcp(std::move(s), *spec, std::move(rest));
  });
}

void ExposedServices::accept_tcp(NegotiatedStream ns, const ExposeSpec& spec, Bytes rest) {
  std::string service = spec.name;
  resolve_address(
      host_.loop(), spec.target.host, spec.target.port, SOCK_STREAM,
      [this, alive = alive_, ns, service, rest = std::move(rest)](Result<SockAddr> addr) mutable {
        if (!*alive) return ns.stream->reset(0);
        if (!addr) return reject(ns, service, addr.error().message);
        tcp_connect(host_.loop(), *addr,
                    [this, alive, ns, service, rest = std::move(rest)](Result<UvHandle<uv_tcp_t>> tcp) mutable {
                      if (!*alive) return ns.stream->reset(0);
                      if (!tcp) return reject(ns, service, tcp.error().message);
                      if (ns.stream->is_closed()) return;  // the client gave up meanwhile
                      std::string peer = ns.conn->remote_peer().to_base58();
                      ns.stream->write(encode_tunnel_response(TunnelResponse{true, ""}));
                      spdlog::info("tunnel accepted peer={} service={}", peer, service);
                      auto holder = std::make_shared<std::shared_ptr<TcpBridge>>();
                      auto bridge = TcpBridge::start(
                          std::move(*tcp), ns.stream, std::move(rest),
                          [this, alive, peer, service, holder](const BridgeStats& st, const std::string& reason) {
                            spdlog::info("tunnel closed peer={} service={} bytes_to_service={} "
                                         "bytes_from_service={} reason={}",
                                         peer, service, st.bytes_from_stream, st.bytes_to_stream, log_quote(reason));
                            if (*alive && *holder) bridges_.erase(*holder);
                            holder->reset();
                          });
                      // The bridge may already have finished (e.g. the stream was reset).
                      if (!bridge->finished()) {
                        *holder = bridge;
                        bridges_.insert(bridge);
                      }
                    });
      });
}

void ExposedServices::on_udp_stream(NegotiatedStream ns) {
  read_tunnel_request(host_, std::move(ns), [this, alive = alive_](NegotiatedStream s, TunnelRequest req, Bytes rest) {
    if (!*alive) return s.stream->reset(0);
    if (auto valid = validate_service_name(req.service_name); !valid) {
      return reject(s, req.service_name, "invalid service name");
    }
    spdlog::info("tunnel request peer={} service={} transport=udp", s.conn->remote_peer().to_base58(),
                 req.service_name);
    const ExposeSpec* spec = find(req.service_name, TunnelTransport::Udp);
    if (!spec) return reject(s, req.service_name, fmt::format("unknown udp service {}", req.service_name));
    std::string service = spec->name;
    resolve_address(host_.loop(), spec->target.host, spec->target.port, SOCK_DGRAM,
                    [this, alive, s, service, rest = std::move(rest)](Result<SockAddr> addr) mutable {
                      if (!*alive) return s.stream->reset(0);
                      if (!addr) return reject(s, service, addr.error().message);
                      std::string peer = s.conn->remote_peer().to_base58();
                      auto flow = UdpServiceFlow::start(
                          host_.loop(), s.stream, *addr, std::move(rest),
                          [this, alive, peer, service](UdpServiceFlow* f, const std::string& reason) {
                            spdlog::info("tunnel closed peer={} service={} transport=udp bytes_to_service={} "
                                         "bytes_from_service={} reason={}",
                                         peer, service, f->bytes_to_target(), f->bytes_from_target(), log_quote(reason));
                            if (!*alive) return;
                            std::erase_if(udp_flows_, [f](const auto& p) { return p.get() == f; });
                          });
                      if (!flow) return reject(s, service, flow.error().message);
                      // Replies from the target can only arrive on a later loop turn, after this.
                      s.stream->write(encode_tunnel_response(TunnelResponse{true, ""}));
                      spdlog::info("tunnel accepted peer={} service={} transport=udp", peer, service);
                      udp_flows_.insert(*flow);
                    });
  });
}

}  // namespace punchgate
