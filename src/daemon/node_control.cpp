#include "daemon/node_control.hpp"

#include "autonat/autonat_service.hpp"
#include "holepunch/hole_puncher.hpp"
#include "portmap/port_mapper.hpp"

#include "relay/relay_client.hpp"
#include "relay/relay_service.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/host/ping_service.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "punchgate/kad/kad_service.hpp"
#include "punchgate/tunnel/tunnel_manager.hpp"

#include <unistd.h>

namespace punchgate {

namespace {

using nlohmann::json;

json traffic_json(const TrafficStats& t) {
  return {{"active_connections", t.active},
          {"total_connections", t.total},
          {"bytes_sent", t.bytes_sent},
          {"bytes_received", t.bytes_received}};
}

const char* transport_name(TunnelTransport t) { return t == TunnelTransport::Udp ? "udp" : "tcp"; }

json tunnel_json(const TunnelInfo& t) {
  json j = {{"bind", t.spec.bind.to_string()},
            {"service", t.spec.service},
            {"peer", t.spec.peer.empty() ? json(nullptr) : json(t.spec.peer.to_base58())},
            {"by_name", t.spec.peer.empty()},
            {"transport", transport_name(t.spec.transport)},
            {"spec", t.spec.to_string()}};
  j.update(traffic_json(t.traffic));
  return j;
}

json expose_json(const ExposeInfo& e) {
  json j = {{"name", e.spec.name},
            {"target", e.spec.target.to_string()},
            {"transport", transport_name(e.spec.transport)},
            {"spec", e.spec.to_string()}};
  j.update(traffic_json(e.traffic));
  return j;
}

json addrs_json(const std::vector<Multiaddr>& addrs) {
  json out = json::array();
  for (const Multiaddr& a : addrs) out.push_back(a.to_string());
  return out;
}

// A string parameter, or an error naming it.
Result<std::string> string_param(const json& params, const char* name) {
  auto it = params.find(name);
  if (it == params.end() || !it->is_string()) return make_error("params.{} must be a string", name);
  return it->get<std::string>();
}

}  // namespace

NodeControl::NodeControl(Host& host, KadService* kad, TunnelManager& tunnels, NodeFacts facts)
    : host_(host), kad_(kad), tunnels_(tunnels), facts_(std::move(facts)) {
  host_.add_connection_observer([this, alive = alive_](const ConnectionPtr& c, bool opened, const std::string& reason) {
    if (!*alive) return;
    json ev = {{"event", opened ? "peer_connected" : "peer_disconnected"},
               {"peer_id", c->remote_peer().to_base58()},
               {"address", c->remote_addr().to_string()},
               {"connection", c->is_relayed() ? "relayed" : "direct"}};
    if (!opened) ev["reason"] = reason;
    publish(std::move(ev));
  });
}

NodeControl::~NodeControl() { *alive_ = false; }

void NodeControl::publish(json event) const {
  if (publish_) publish_(event);
}

Result<json> NodeControl::call(const std::string& method, const json& params) {
  if (method == "status") return status();
  if (method == "peers") return peers();
  if (method == "tunnels") return tunnels();
  if (method == "tunnel.add") return tunnel_add(params);
  if (method == "tunnel.rm") return tunnel_rm(params);
  if (method == "expose.add") return expose_add(params);
  if (method == "expose.rm") return expose_rm(params);
  return make_error("unknown method \"{}\" (expected status, peers, tunnels, tunnel.add, tunnel.rm, expose.add, "
                    "expose.rm or subscribe)",
                    method);
}

json NodeControl::peers() const {
  json list = json::array();
  for (const ConnectionPtr& c : host_.connections()) {
    json p = {{"peer_id", c->remote_peer().to_base58()},
              {"address", c->remote_addr().to_string()},
              {"connection", c->is_relayed() ? "relayed" : "direct"},
              {"direction", c->endpoint() == Endpoint::Dialer ? "outbound" : "inbound"},
              {"why", hole_puncher_ ? hole_puncher_->describe(c->remote_peer())
                                    : std::string(c->is_relayed() ? "relayed" : "direct")},
              {"rtt_ms", nullptr},
              {"agent_version", nullptr}};
    if (auto rtt = host_.ping().last_rtt(*c)) {
      p["rtt_ms"] = std::chrono::duration<double, std::milli>(*rtt).count();
    }
    if (const PeerInfo* info = host_.peer_store().get(c->remote_peer()); info && !info->agent_version.empty()) {
      p["agent_version"] = info->agent_version;
    }
    list.push_back(std::move(p));
  }
  return {{"peers", std::move(list)}};
}

json NodeControl::tunnels() const {
  json t = json::array();
  for (const TunnelInfo& info : tunnels_.tunnels()) t.push_back(tunnel_json(info));
  json e = json::array();
  for (const ExposeInfo& info : tunnels_.exposes()) e.push_back(expose_json(info));
  return {{"tunnels", std::move(t)}, {"exposes", std::move(e)}};
}

json NodeControl::port_mapping_status() const {
  json list = json::array();
  if (port_mapper_) {
    for (const PortMappingInfo& m : port_mapper_->mappings()) {
      json j = {{"internal_port", m.internal_port},
                {"state", m.state},
                {"protocol", m.protocol ? json(to_string(*m.protocol)) : json(nullptr)},
                {"external_addr", m.external_addr.empty() ? json(nullptr) : json(m.external_addr)},
                {"advertised", m.advertised},
                {"lifetime_s", m.lifetime_s},
                {"expires_in_s", m.expires_in_s ? json(*m.expires_in_s) : json(nullptr)}};
      if (!m.last_error.empty()) j["last_error"] = m.last_error;
      list.push_back(std::move(j));
    }
  }
  return {{"enabled", port_mapper_ != nullptr}, {"mappings", std::move(list)}};
}

json NodeControl::status() const {
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  json s = {
      {"peer_id", host_.peer_id().to_base58()},
      {"version", agent_version()},
      {"pid", static_cast<int64_t>(::getpid())},
      {"uptime_s", uptime.count()},
      {"listen_addrs", addrs_json(host_.listen_addrs())},
      // Confirmed: reported by at least two distinct peers.
      {"external_addrs", addrs_json(host_.peer_store().observed_addrs(2))},
      {"observed_addrs", addrs_json(host_.peer_store().observed_addrs(1))},
      {"nat_mapping", hole_puncher_ ? to_string(hole_puncher_->nat_mapping().mapping) : "unknown"},
      {"port_mapping", port_mapping_status()},
      {"nat_reachability", autonat_ ? to_string(autonat_->reachability()) : "unknown"},
      {"autonat", autonat_status()},
      {"role", facts_.role},
      {"relay", relay_status()},
      {"dht", {{"routing_table_size", kad_ ? kad_->routing_table_size() : 0}}},
      {"control_socket", facts_.control_socket},
  };
  s.update(peers());
  s.update(tunnels());
  return s;
}

json NodeControl::autonat_status() const {
  if (!autonat_) return nullptr;
  const auto& addr = autonat_->public_addr();
  return {{"reachability", to_string(autonat_->reachability())},
          {"public_addr", addr ? json(addr->to_string()) : json(nullptr)},
          {"confidence", autonat_->confidence()},
          {"serving", autonat_->serving()}};
}

json NodeControl::relay_status() const {
  json held = json::array();
  if (relay_client_) {
    for (const RelayReservationInfo& r : relay_client_->reservations()) {
      held.push_back({{"relay", r.relay.to_base58()}, {"expires", r.expire}, {"addrs", addrs_json(r.addrs)}});
    }
  }
  return {{"reservations_held", held},
          {"serving", relay_server_ != nullptr && relay_server_->serving()},
          {"reserving", relay_client_ != nullptr && relay_client_->reserving()},
          {"reservations_served", relay_server_ ? relay_server_->reservation_count() : 0},
          {"circuits_served", relay_server_ ? relay_server_->circuit_count() : 0}};
}

Result<json> NodeControl::tunnel_add(const json& params) {
  auto text = string_param(params, "spec");
  if (!text) return text.error();
  bool by_name = params.value("by_name", false);
  auto spec = by_name ? parse_tunnel_by_name(*text) : parse_tunnel(*text);
  if (!spec) return spec.error();
  PG_TRY(tunnels_.add_tunnel(*spec));
  spdlog::info("tunnel added bind={} service={} via=control", spec->bind.to_string(), spec->service);
  json j = tunnel_json(TunnelInfo{*spec, {}});
  publish({{"event", "tunnel_added"}, {"tunnel", j}});
  return json{{"tunnel", j}};
}

Result<json> NodeControl::tunnel_rm(const json& params) {
  auto text = string_param(params, "bind");
  if (!text) return text.error();
  auto b = parse_tunnel_bind(*text);
  if (!b) return b.error();
  PG_TRY(tunnels_.remove_tunnel(b->bind, b->transport));
  publish({{"event", "tunnel_removed"}, {"bind", *text}});
  return json{{"removed", *text}};
}

Result<json> NodeControl::expose_add(const json& params) {
  auto text = string_param(params, "spec");
  if (!text) return text.error();
  auto spec = parse_expose(*text);
  if (!spec) return spec.error();
  PG_TRY(tunnels_.add_expose(*spec));
  json j = expose_json(ExposeInfo{*spec, {}});
  publish({{"event", "expose_added"}, {"expose", j}});
  return json{{"expose", j}};
}

Result<json> NodeControl::expose_rm(const json& params) {
  auto name = string_param(params, "name");
  if (!name) return name.error();
  if (auto st = validate_service_name(*name); !st) {
    return make_error("invalid service name \"{}\": {}", *name, st.error().message);
  }
  PG_TRY(tunnels_.remove_expose(*name));
  publish({{"event", "expose_removed"}, {"name", *name}});
  return json{{"removed", *name}};
}

}  // namespace punchgate
