// Keeps our QUIC port forwarded by the home gateway while the node runs (NAT-PMP or UPnP-IGD):
// one MappingLifecycle per mappable listen port (see mapping_targets), its gateway requests run
// on the libuv thread pool (they block), everything else on the loop. A mapped address is
// advertised through Host::set_mapped_addrs (identify push, DHT records, hole punching).
#pragma once

#include "portmap/mapping_lifecycle.hpp"
#include "portmap/mapping_targets.hpp"
#include "punchgate/core/uv_handle.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace punchgate {

class Host;
class UpnpGateway;

struct PortMapperConfig {
  MappingParams params;
  uint64_t natpmp_timeout_ms = 2'000;  // per NAT-PMP request (external address + mapping)
  int upnp_discovery_ms = 2'000;       // SSDP search
  uint64_t stop_budget_ms = 2'000;     // how long stop() waits for the deletes
};

// One mapping for `punchgate status`.
struct PortMappingInfo {
  uint16_t internal_port = 0;
  std::string state;  // mapping, mapped, renewing, unavailable, removing, stopped
  std::optional<MapProtocol> protocol;
  std::string external_addr;  // /ip4/…/udp/…/quic-v1 while mapped
  bool advertised = false;
  uint32_t lifetime_s = 0;
  std::optional<uint64_t> expires_in_s;
  std::string last_error;
};

class PortMapper {
 public:
  PortMapper(Host& host, PortMapperConfig config = {});
  // Waits for a gateway request still running on the thread pool (libuv must not lose it).
  ~PortMapper();
  PortMapper(const PortMapper&) = delete;
  PortMapper& operator=(const PortMapper&) = delete;

  // Picks the ports to map from the host's listen addresses (call after Host::start) and starts.
  void start();
  // Withdraws our mapped addresses and deletes the mappings; `done` runs once they are deleted, or
  // after stop_budget_ms at the latest. A second call runs `done` at once.
  void stop(std::function<void()> done);

  std::vector<PortMappingInfo> mappings() const;

 private:
  struct Slot;
  struct Shared;
  void execute(Slot& s, std::vector<MappingCommand> cmds);
  void submit(Slot& s, const MappingCommand& c);
  void log_notice(const MappingCommand& c) const;
  void publish_addrs();
  void arm_timer(Slot& s);
  void maybe_finish_stop();
  void finish_stop();

  Host& host_;
  PortMapperConfig config_;
  std::vector<std::shared_ptr<Slot>> slots_;
  std::shared_ptr<Shared> shared_;
  Timer stop_timer_;
  bool stopping_ = false;
  std::function<void()> stop_done_;
};

}  // namespace punchgate
