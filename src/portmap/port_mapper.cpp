#include "portmap/port_mapper.hpp"

#include "portmap/gateway_clients.hpp"
#include "punchgate/core/log.hpp"
#include "punchgate/host/host.hpp"

#include <uv.h>

#include <utility>

namespace punchgate {

namespace {

// A blocking call on the libuv thread pool, then `done` on the loop. The job owns itself while
// libuv holds it; `work` must touch only what it captured.
struct PoolJob {
  uv_work_t req{};
  std::function<void()> work;
  std::function<void()> done;
};

void run_on_pool(uv_loop_t* loop, std::function<void()> work, std::function<void()> done) {
  auto job = std::make_unique<PoolJob>();
  job->work = std::move(work);
  job->done = std::move(done);
  job->req.data = job.get();
  int r = uv_queue_work(
      loop, &job->req, [](uv_work_t* w) { static_cast<PoolJob*>(w->data)->work(); },
      [](uv_work_t* w, int) {
        std::unique_ptr<PoolJob> j(static_cast<PoolJob*>(w->data));
        j->done();
      });
  if (r == 0) {
    job.release();  // NOLINT: reclaimed in the after-work callback
  } else {
    job->work();  // cannot happen with a non-null work callback; still, never lose `done`
    job->done();
  }
}

const char* state_name(MappingLifecycle::Phase p) {
  switch (p) {
    case MappingLifecycle::Phase::Idle: return "idle";
    case MappingLifecycle::Phase::Mapping: return "mapping";
    case MappingLifecycle::Phase::Mapped: return "mapped";
    case MappingLifecycle::Phase::Renewing: return "renewing";
    case MappingLifecycle::Phase::Waiting: return "unavailable";
    case MappingLifecycle::Phase::Unmapping: return "removing";
    case MappingLifecycle::Phase::Stopped: return "stopped";
  }
  return "unknown";
}

}  // namespace

struct PortMapper::Shared {
  size_t in_flight = 0;
  bool closed = false;  // the mapper is gone: results are dropped
};

struct PortMapper::Slot : std::enable_shared_from_this<Slot> {
  Slot(uv_loop_t* loop, MappingTarget t, const MappingParams& p) : target(std::move(t)), core(target.port, p), timer(loop) {}
  MappingTarget target;
  MappingLifecycle core;
  Timer timer;
  // The IGD the last UPnP request used. Only the one request in flight touches it.
  std::shared_ptr<UpnpGateway> upnp;
  Multiaddr advertised;  // empty: nothing to advertise
};

PortMapper::PortMapper(Host& host, PortMapperConfig config)
    : host_(host), config_(config), shared_(std::make_shared<Shared>()), stop_timer_(host.loop()) {}

PortMapper::~PortMapper() {
  shared_->closed = true;
  // libuv may not close its loop while a work request is pending, and the request's memory is
  // freed in its after-work callback: let the gateway call finish (its own timeouts bound it).
  while (shared_->in_flight > 0) uv_run(host_.loop(), UV_RUN_ONCE);
}

void PortMapper::start() {
  if (!slots_.empty() || stopping_) return;
  auto targets = mapping_targets(host_.listen_addrs());
  if (targets.empty()) {
    spdlog::info("port mapping skipped reason=\"no IPv4 QUIC listen address on a LAN (only public or loopback ones)\"");
    return;
  }
  for (auto& t : targets) slots_.push_back(std::make_shared<Slot>(host_.loop(), std::move(t), config_.params));
  for (auto& s : slots_) execute(*s, s->core.start(uv_now(host_.loop())));
}

void PortMapper::execute(Slot& s, std::vector<MappingCommand> cmds) {
  using Kind = MappingCommand::Kind;
  bool addrs_changed = false;
  for (const MappingCommand& c : cmds) {
    switch (c.kind) {
      case Kind::Map:
      case Kind::Unmap:
        submit(s, c);
        break;
      case Kind::Advertise:
        s.advertised = worth_advertising(c.external_ip) ? mapped_quic_addr(c.external_ip, c.external_port) : Multiaddr{};
        addrs_changed = true;
        break;
      case Kind::Withdraw:
        s.advertised = Multiaddr{};
        addrs_changed = true;
        break;
      case Kind::Notice:
        log_notice(c);
        break;
      case Kind::Done:
        break;
    }
  }
  if (addrs_changed) publish_addrs();
  arm_timer(s);
  maybe_finish_stop();
}

void PortMapper::submit(Slot& s, const MappingCommand& c) {
  auto outcome = std::make_shared<MapOutcome>();
  // In: the IGD to reuse (renewals and deletes skip discovery); out: the IGD the request used.
  auto igd = std::make_shared<std::shared_ptr<UpnpGateway>>();
  if (c.protocol == MapProtocol::Upnp && (c.reuse_gateway || c.kind == MappingCommand::Kind::Unmap)) *igd = s.upnp;
  const MappingTarget target = s.target;
  const PortMapperConfig cfg = config_;
  auto work = [c, outcome, igd, target, cfg] {
    if (c.protocol == MapProtocol::NatPmp) {
      *outcome = c.kind == MappingCommand::Kind::Map
                     ? natpmp_map(c.internal_port, c.external_port, c.lifetime_s, cfg.natpmp_timeout_ms)
                     : natpmp_unmap(c.internal_port, cfg.natpmp_timeout_ms);
      return;
    }
    if (!*igd) {
      auto found = UpnpGateway::discover(cfg.upnp_discovery_ms);
      if (!found) {
        outcome->error = found.error().message;
        return;
      }
      *igd = std::move(*found);
    }
    UpnpGateway& gw = **igd;
    *outcome = c.kind == MappingCommand::Kind::Map
                   ? gw.add(c.internal_port, internal_client_for(target, gw.lan_addr()), c.external_port, c.lifetime_s)
                   : gw.remove(c.external_port);
  };
  std::weak_ptr<Slot> weak = s.weak_from_this();
  ++shared_->in_flight;
  auto done = [this, shared = shared_, weak, outcome, igd, protocol = c.protocol] {
    --shared->in_flight;
    if (shared->closed) return;
    auto slot = weak.lock();
    if (!slot) return;
    // A gateway that failed us is looked up afresh next time (it may have rebooted elsewhere);
    // one that answered "port taken" is fine.
    if (protocol == MapProtocol::Upnp) slot->upnp = outcome->ok || outcome->port_taken ? *igd : nullptr;
    spdlog::debug("port mapping request finished protocol={} internal_port={} ok={} error={}", to_string(protocol),
                  slot->target.port, outcome->ok, log_quote(outcome->error));
    execute(*slot, slot->core.on_outcome(*outcome, uv_now(host_.loop())));
  };
  run_on_pool(host_.loop(), std::move(work), std::move(done));
}

void PortMapper::log_notice(const MappingCommand& c) const {
  using N = MappingCommand::NoticeKind;
  const std::string external = fmt::format("{}:{}", c.external_ip, c.external_port);
  switch (c.notice) {
    case N::Added:
    case N::Changed:
      spdlog::info("port mapping {} protocol={} external={} internal_port={} lifetime_s={} advertised={}{}",
                   c.notice == N::Added ? "added" : "changed", to_string(c.protocol), external, c.internal_port,
                   c.lifetime_s, worth_advertising(c.external_ip),
                   worth_advertising(c.external_ip) ? "" : " reason=\"external address is not public (another NAT upstream)\"");
      break;
    case N::Renewed:
      spdlog::debug("port mapping renewed protocol={} external={} internal_port={} lifetime_s={}",
                    to_string(c.protocol), external, c.internal_port, c.lifetime_s);
      break;
    case N::RenewFailed:
      spdlog::warn("port mapping renew failed protocol={} external={} internal_port={} reason={} retry_in_ms={}",
                   to_string(c.protocol), external, c.internal_port, log_quote(c.reason), c.retry_in_ms);
      break;
    case N::Lost:
      spdlog::warn("port mapping lost protocol={} external={} internal_port={} reason={}", to_string(c.protocol),
                   external, c.internal_port, log_quote(c.reason));
      break;
    case N::Unavailable:
      spdlog::info("port mapping unavailable internal_port={} reason={} retry_in_s={}", c.internal_port,
                   log_quote(c.reason), c.retry_in_ms / 1000);
      break;
    case N::StillUnavailable:
      spdlog::debug("port mapping still unavailable internal_port={} reason={} retry_in_s={}", c.internal_port,
                    log_quote(c.reason), c.retry_in_ms / 1000);
      break;
    case N::Removed:
      spdlog::info("port mapping removed protocol={} external={} internal_port={}", to_string(c.protocol), external,
                   c.internal_port);
      break;
    case N::RemoveFailed:
      spdlog::warn("port mapping removal failed protocol={} external={} internal_port={} reason={}",
                   to_string(c.protocol), external, c.internal_port, log_quote(c.reason));
      break;
  }
}

void PortMapper::publish_addrs() {
  std::vector<Multiaddr> addrs;
  for (const auto& s : slots_) {
    if (!s->advertised.empty()) addrs.push_back(s->advertised);
  }
  host_.set_mapped_addrs(std::move(addrs));
}

void PortMapper::arm_timer(Slot& s) {
  auto at = s.core.wake_at();
  if (!at) return s.timer.stop();
  uint64_t now = uv_now(host_.loop());
  s.timer.start(*at > now ? *at - now : 0, 0, [this, slot = &s] {
    execute(*slot, slot->core.on_timer(uv_now(host_.loop())));
  });
}

void PortMapper::stop(std::function<void()> done) {
  if (stopping_) {
    finish_stop();
    if (done) done();
    return;
  }
  stopping_ = true;
  stop_done_ = std::move(done);
  for (auto& s : slots_) execute(*s, s->core.stop(uv_now(host_.loop())));
  maybe_finish_stop();  // nothing to map at all, or nothing to delete
  if (!stop_done_) return;
  stop_timer_.start(config_.stop_budget_ms, 0, [this] {
    spdlog::warn("port mapping removal timed out after_ms={} (the gateway drops the mapping when its lease ends)",
                 config_.stop_budget_ms);
    finish_stop();
  });
}

void PortMapper::maybe_finish_stop() {
  if (!stopping_ || !stop_done_) return;
  for (const auto& s : slots_) {
    if (s->core.phase() != MappingLifecycle::Phase::Stopped) return;
  }
  finish_stop();
}

void PortMapper::finish_stop() {
  stop_timer_.stop();
  if (auto done = std::exchange(stop_done_, nullptr)) done();
}

std::vector<PortMappingInfo> PortMapper::mappings() const {
  std::vector<PortMappingInfo> out;
  uint64_t now = uv_now(host_.loop());
  for (const auto& s : slots_) {
    PortMappingInfo i;
    i.internal_port = s->target.port;
    i.state = state_name(s->core.phase());
    i.last_error = s->core.last_error();
    if (const auto& h = s->core.held()) {
      i.protocol = h->protocol;
      i.external_addr = mapped_quic_addr(h->external_ip, h->external_port).to_string();
      i.advertised = !s->advertised.empty();
      i.lifetime_s = h->lifetime_s;
      if (h->expires_at_ms) i.expires_in_s = *h->expires_at_ms > now ? (*h->expires_at_ms - now) / 1000 : 0;
    }
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace punchgate
