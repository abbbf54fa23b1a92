// The node's side of the control socket: answers status/peers/tunnels and applies runtime tunnel
// and expose changes, publishing an event for each change and for peers coming and going.
#pragma once

#include "daemon/control_server.hpp"
#include "punchgate/host/host.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace punchgate {

class AutonatService;
class HolePuncher;
class PortMapper;
class KadService;
class RelayClient;
class RelayService;
class TunnelManager;

struct NodeFacts {
  std::string role;  // "public" (serves others, no --bootstrap) or "private"
  std::string control_socket;
};

class NodeControl final : public ControlHandler {
 public:
  using Publish = std::function<void(const nlohmann::json& event)>;

  NodeControl(Host& host, KadService* kad, TunnelManager& tunnels, NodeFacts facts);
  ~NodeControl() override;
  NodeControl(const NodeControl&) = delete;
  NodeControl& operator=(const NodeControl&) = delete;
  // Where events go (the control server's subscribers); unset: dropped.
  void set_publisher(Publish publish) { publish_ = std::move(publish); }
  // Either may be null (relaying off, or not serving).
  void set_hole_puncher(const HolePuncher* p) { hole_puncher_ = p; }
  void set_port_mapper(const PortMapper* p) { port_mapper_ = p; }
  void set_autonat(const AutonatService* a) { autonat_ = a; }
  void set_relay(const RelayClient* client, const RelayService* server) {
    relay_client_ = client;
    relay_server_ = server;
  }

  Result<nlohmann::json> call(const std::string& method, const nlohmann::json& params) override;

  nlohmann::json status() const;
  nlohmann::json port_mapping_status() const;
  nlohmann::json peers() const;
  nlohmann::json tunnels() const;

 private:
  Result<nlohmann::json> tunnel_add(const nlohmann::json& params);
  Result<nlohmann::json> tunnel_rm(const nlohmann::json& params);
  Result<nlohmann::json> expose_add(const nlohmann::json& params);
  Result<nlohmann::json> expose_rm(const nlohmann::json& params);
  void publish(nlohmann::json event) const;
  nlohmann::json relay_status() const;
  nlohmann::json autonat_status() const;

  Host& host_;
  KadService* kad_;
  TunnelManager& tunnels_;
  NodeFacts facts_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  Publish publish_;
  const RelayClient* relay_client_ = nullptr;
  const HolePuncher* hole_puncher_ = nullptr;
  const PortMapper* port_mapper_ = nullptr;
  const AutonatService* autonat_ = nullptr;
  const RelayService* relay_server_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // the host's observer outlives us
};

}  // namespace punchgate
