// The life of one gateway port mapping as a pure transition: events in (start, a gateway
// request's outcome, time, stop), commands out (ask the gateway to map or unmap, advertise or
// withdraw the external address, a notice to log). PortMapper runs the requests on the libuv
// thread pool and executes the rest; every decision — which protocol first, when to renew, how
// to back off, when a lease counts as lost, what to log once — lives here and is unit-tested
// without a network.
//
// Order: NAT-PMP first, then UPnP-IGD. NAT-PMP is one UDP exchange with the default gateway (the
// only box that can map for us): it answers in milliseconds, or fails at once with an ICMP
// refusal, and its leases are honoured by every gateway that speaks it (PCP gateways answer it
// too). UPnP needs a 2 s SSDP multicast search, an HTTP fetch of the device description and SOAP
// calls, and many IGDs handle leases badly, so it comes second.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace punchgate {

enum class MapProtocol { NatPmp, Upnp };
const char* to_string(MapProtocol p);

struct MappingParams {
  uint32_t lifetime_s = 3600;                   // asked for; the gateway may grant less (or 0)
  uint64_t retry_first_ms = 60'000;              // no gateway maps for us: first retry
  uint64_t retry_max_ms = 30 * 60'000;
  uint64_t renew_retry_first_ms = 5'000;         // a renewal failed: retry (before the lease ends)
  uint64_t permanent_recheck_ms = 30 * 60'000;   // lifetime 0: re-add now and then (gateway reboot)
  uint32_t permanent_failures_lost = 3;          // lifetime 0: this many failed re-adds = lost
};

// One gateway request's outcome, as PortMapper reports it back.
struct MapOutcome {
  bool ok = false;
  std::string external_ip;   // ok
  uint16_t external_port = 0;
  uint32_t lifetime_s = 0;   // ok: granted lifetime, 0 = permanent
  bool port_taken = false;   // !ok: the external port asked for belongs to someone else
  std::string error;         // !ok
};

struct MappingCommand {
  enum class Kind {
    Map,        // ask `protocol` to map internal_port -> external_port (0: any) for lifetime_s
    Unmap,      // ask `protocol` to delete the mapping of external_port
    Advertise,  // external_ip:external_port is ours now (replaces any earlier one)
    Withdraw,   // we hold no mapping any more
    Notice,     // something to log: `notice`
    Done,       // stopped: nothing more will happen
  };
  // StillUnavailable: a later round failed too (Unavailable is said once per stretch).
  enum class NoticeKind { Added, Renewed, Changed, RenewFailed, Lost, Unavailable, StillUnavailable, Removed, RemoveFailed };
  Kind kind = Kind::Notice;
  MapProtocol protocol = MapProtocol::NatPmp;
  uint16_t internal_port = 0;
  uint16_t external_port = 0;
  uint32_t lifetime_s = 0;
  bool renewal = false;  // Map: renewing what we hold
  bool reuse_gateway = false;  // Map: the gateway that answered last may be asked again (no discovery)
  std::string external_ip;
  NoticeKind notice = NoticeKind::Added;
  std::string reason;          // Unavailable, StillUnavailable, RenewFailed, Lost, RemoveFailed
  uint64_t retry_in_ms = 0;    // Unavailable, StillUnavailable, RenewFailed
};

class MappingLifecycle {
 public:
  enum class Phase { Idle, Mapping, Mapped, Renewing, Waiting, Unmapping, Stopped };

  MappingLifecycle(uint16_t internal_port, MappingParams params = {});

  std::vector<MappingCommand> start(uint64_t now_ms);
  // The outcome of the one request in flight (Map or Unmap).
  std::vector<MappingCommand> on_outcome(const MapOutcome& outcome, uint64_t now_ms);
  // Call when `wake_at()` has passed (earlier calls do nothing).
  std::vector<MappingCommand> on_timer(uint64_t now_ms);
  // Removes the mapping if we hold one; Done once nothing is in flight any more.
  std::vector<MappingCommand> stop(uint64_t now_ms);

  // When on_timer wants to run next; none while a request is in flight or after stop.
  std::optional<uint64_t> wake_at() const { return wake_at_; }

  Phase phase() const { return phase_; }
  uint16_t internal_port() const { return internal_port_; }
  // The mapping we hold (Mapped, Renewing), else nothing.
  struct Held {
    MapProtocol protocol;
    std::string external_ip;
    uint16_t external_port;
    uint32_t lifetime_s;
    std::optional<uint64_t> expires_at_ms;  // none: permanent
  };
  const std::optional<Held>& held() const { return held_; }
  // Why the last attempt to map failed (empty after a success).
  const std::string& last_error() const { return last_error_; }

 private:
  static constexpr MapProtocol kOrder[] = {MapProtocol::NatPmp, MapProtocol::Upnp};

  void request_map(std::vector<MappingCommand>& out, size_t order_index, uint16_t external_port,
                   bool reuse_gateway = false);
  void request_renewal(std::vector<MappingCommand>& out);
  void request_unmap(std::vector<MappingCommand>& out);
  void on_map_success(std::vector<MappingCommand>& out, const MapOutcome& o, uint64_t now_ms);
  void on_first_map_failure(std::vector<MappingCommand>& out, const MapOutcome& o, uint64_t now_ms);
  void on_renewal_failure(std::vector<MappingCommand>& out, const MapOutcome& o, uint64_t now_ms);
  void lose(std::vector<MappingCommand>& out, const std::string& why);
  void finish(std::vector<MappingCommand>& out);
  MappingCommand notice(MappingCommand::NoticeKind kind) const;

  uint16_t internal_port_;
  MappingParams params_;
  Phase phase_ = Phase::Idle;
  std::optional<Held> held_;
  std::optional<uint64_t> wake_at_;
  bool stopping_ = false;
  // Mapping: which protocol of kOrder is being asked, and the external port asked for.
  size_t order_index_ = 0;
  uint16_t asked_port_ = 0;
  std::vector<std::string> failures_;  // this round, "natpmp: …", "upnp: …"
  uint64_t retry_ms_ = 0;              // next wait after a failed round
  uint64_t renew_retry_ms_ = 0;        // next wait after a failed renewal
  uint32_t renew_failures_ = 0;
  // "unavailable" is logged once per stretch without a mapping, not at every retry.
  bool unavailable_reported_ = false;
  std::string last_error_;
};

}  // namespace punchgate
