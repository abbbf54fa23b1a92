#include "tunnel/exposed_services.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "tunnel/tcp_connect.hpp"
#include "tunnel/tunnel_handshake.hpp"
#include "tunnel/udp_service_flow.hpp"

namespace punchgate {

ExposedServices::ExposedServices(Host& host, std::vector<ExposeSpec> exposes) : host_(host) {
  for (ExposeSpec& e : exposes) services_[e.name].spec = std::move(e);
  host_.set_stream_handler(std::string(kTunnelProtocol), [this](NegotiatedStream ns) { on_tcp_stream(std::move(ns)); });
  host_.set_stream_handler(std::string(kUdpTunnelProtocol),
                           [this](NegotiatedStream ns) { on_udp_stream(std::move(ns)); });
}

ExposedServices::~ExposedServices() { shutdown(); }

void ExposedServices::close_tunnels(Service& s, const std::string& reason) {
  auto bridges = std::move(s.bridges);
  s.bridges.clear();
  for (auto& b : bridges) b->abort(reason);
  auto flows = std::move(s.udp_flows);
  s.udp_flows.clear();
  for (auto& f : flows) f->close(reason);
}

void ExposedServices::shutdown() {
  *alive_ = false;
  for (auto& [name, s] : services_) close_tunnels(s, "shutting down");
}

size_t ExposedServices::active_tunnels() const {
  size_t n = 0;
  for (const auto& [name, s] : services_) n += s.bridges.size() + s.udp_flows.size();
  return n;
}

Status ExposedServices::add(const ExposeSpec& spec) {
  if (services_.contains(spec.name)) {
    return make_error("service {} is already exposed ({})", spec.name, services_.at(spec.name).spec.to_string());
  }
  services_[spec.name].spec = spec;
  return {};
}

Status ExposedServices::remove(const std::string& name) {
  auto it = services_.find(name);
  if (it == services_.end()) return make_error("no exposed service named \"{}\"", name);
  // Moved out first: closing fires done callbacks that look the service up by name.
  Service gone = std::move(it->second);
  services_.erase(it);
  close_tunnels(gone, "service removed");
  return {};
}

std::vector<ExposedServices::Info> ExposedServices::list() const {
  std::vector<Info> out;
  for (const auto& [name, s] : services_) {
    Info info{s.spec, s.finished};
    for (const auto& b : s.bridges) {
      ++info.traffic.active;
      info.traffic.bytes_sent += b->stats().bytes_from_stream;
      info.traffic.bytes_received += b->stats().bytes_to_stream;
    }
    for (const auto& f : s.udp_flows) {
      ++info.traffic.active;
      info.traffic.bytes_sent += f->bytes_to_target();
      info.traffic.bytes_received += f->bytes_from_target();
    }
    out.push_back(std::move(info));
  }
  return out;
}

ExposedServices::Service* ExposedServices::find(const std::string& name, TunnelTransport t) {
  auto it = services_.find(name);
  return it != services_.end() && it->second.spec.transport == t ? &it->second : nullptr;
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
    const Service* svc = find(req.service_name, TunnelTransport::Tcp);
    if (!svc) return reject(s, req.service_name, fmt::format("unknown service {}", req.service_name));
    accept_tcp(std::move(s), svc->spec, std::move(rest));
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
                            if (*alive && *holder) {
                              // The service may have been removed (or removed and added again).
                              if (Service* svc = find(service, TunnelTransport::Tcp);
                                  svc && svc->bridges.erase(*holder) > 0) {
                                svc->finished.bytes_sent += st.bytes_from_stream;
                                svc->finished.bytes_received += st.bytes_to_stream;
                              }
                            }
                            holder->reset();
                          });
                      Service* svc = find(service, TunnelTransport::Tcp);
                      if (svc) ++svc->finished.total;
                      // The bridge may already have finished (e.g. the stream was reset).
                      if (!bridge->finished()) {
                        *holder = bridge;
                        if (svc) svc->bridges.insert(bridge);
                        else bridge->abort("service removed");
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
    const Service* svc = find(req.service_name, TunnelTransport::Udp);
    if (!svc) return reject(s, req.service_name, fmt::format("unknown udp service {}", req.service_name));
    std::string service = svc->spec.name;
    resolve_address(host_.loop(), svc->spec.target.host, svc->spec.target.port, SOCK_DGRAM,
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
                            Service* entry = find(service, TunnelTransport::Udp);
                            if (!entry) return;
                            if (std::erase_if(entry->udp_flows, [f](const auto& p) { return p.get() == f; }) > 0) {
                              entry->finished.bytes_sent += f->bytes_to_target();
                              entry->finished.bytes_received += f->bytes_from_target();
                            }
                          });
                      if (!flow) return reject(s, service, flow.error().message);
                      Service* entry = find(service, TunnelTransport::Udp);
                      if (!entry) {
                        (*flow)->close("service removed");
                        return;
                      }
                      // Replies from the target can only arrive on a later loop turn, after this.
                      s.stream->write(encode_tunnel_response(TunnelResponse{true, ""}));
                      spdlog::info("tunnel accepted peer={} service={} transport=udp", peer, service);
                      ++entry->finished.total;
                      entry->udp_flows.insert(*flow);
                    });
  });
}

}  // namespace punchgate
