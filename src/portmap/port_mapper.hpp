// Keeps our QUIC port mapped on the home gateway (NAT-PMP or UPnP-IGD) while the node runs: maps
// at start, advertises /ip4/<external>/udp/<port>/quic-v1 (Host::set_mapped_addrs, so identify
// and hole punching offer it), renews at half the lifetime, retries with backoff when no gateway
// offers mapping, and removes the mapping on stop(). The blocking gateway calls run on the libuv
// thread pool; everything else runs on the loop.
#pragma once

#include "portmap/gateway_mapping.hpp"
#include "punchgate/host/host.hpp"

#include <functional>
#include <memory>
#include <optional>

namespace punchgate {

class Timer;

struct PortMapperConfig {
  uint32_t lifetime_s = 3600;
  uint64_t first_retry_ms = 60'000;
  uint64_t max_retry_ms = 1'800'000;
};

// When to renew a mapping of `lifetime_s` (0: permanent, never), in milliseconds.
std::optional<uint64_t> renew_after_ms(uint32_t lifetime_s);
// The next retry delay after `previous_ms` (0: the first failure).
uint64_t next_retry_ms(uint64_t previous_ms, const PortMapperConfig& c);

class PortMapper {
 public:
  PortMapper(Host& host, PortMapperConfig config = {});
  ~PortMapper();
  PortMapper(const PortMapper&) = delete;
  PortMapper& operator=(const PortMapper&) = delete;

  // Picks the IPv4 QUIC listen port and starts mapping it. False when there is none to map.
  bool start();
  // Removes the mapping (if any) and calls `done` when the gateway answered or gave up.
  void stop(std::function<void()> done);
  const std::optional<GatewayMapping>& mapping() const { return mapping_; }
  const std::string& last_error() const { return last_error_; }

 private:
  void run_job(std::function<Result<GatewayMapping>()> job, std::function<void(Result<GatewayMapping>)> done);
  void request(bool renew);
  void on_result(Result<GatewayMapping> r);

  Host& host_;
  PortMapperConfig config_;
  uint16_t port_ = 0;
  std::optional<GatewayMapping> mapping_;
  std::string last_error_;
  bool unavailable_logged_ = false;
  bool stopping_ = false;
  bool busy_ = false;
  uint64_t retry_ms_ = 0;
  std::function<void()> stop_done_;
  std::unique_ptr<Timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
