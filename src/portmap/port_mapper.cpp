#include "portmap/port_mapper.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"

#include <uv.h>

#include <algorithm>

namespace punchgate {

namespace {

// One blocking gateway call on the thread pool. The request owns itself from queueing until
// its after-work callback runs on the loop.
struct GatewayJob {
  uv_work_t req{};
  std::function<Result<GatewayMapping>()> work;
  std::optional<Result<GatewayMapping>> result;
  std::function<void(Result<GatewayMapping>)> done;
};

}  // namespace

std::optional<uint64_t> renew_after_ms(uint32_t lifetime_s) {
  if (lifetime_s == 0) return std::nullopt;
  // Half the lifetime, but never more often than every 30 s (a gateway granting 10 s leases
  // would otherwise have us renewing constantly).
  return std::max<uint64_t>(lifetime_s * 1000ULL / 2, 30'000);
}

uint64_t next_retry_ms(uint64_t previous_ms, const PortMapperConfig& c) {
  return previous_ms == 0 ? c.first_retry_ms : std::min(previous_ms * 2, c.max_retry_ms);
}

PortMapper::PortMapper(Host& host, PortMapperConfig config)
    : host_(host), config_(config), timer_(std::make_unique<Timer>(host.loop())) {}

PortMapper::~PortMapper() { *alive_ = false; }

bool PortMapper::start() {
  for (const Multiaddr& a : host_.listen_addrs()) {
    auto ep = quic_endpoint_of(a);
    if (!ep || ep->is_dns || ep->family != AF_INET || ep->host.rfind("127.", 0) == 0) continue;
    port_ = ep->port;
    break;
  }
  if (port_ == 0) {
    spdlog::info("port mapping unavailable reason={}", log_quote("no IPv4 QUIC listen address to map"));
    return false;
  }
  request(false);
  return true;
}

void PortMapper::run_job(std::function<Result<GatewayMapping>()> work,
                         std::function<void(Result<GatewayMapping>)> done) {
  auto job = std::make_unique<GatewayJob>();
  job->work = std::move(work);
  job->done = std::move(done);
  job->req.data = job.get();
  int rv = uv_queue_work(
      host_.loop(), &job->req, [](uv_work_t* req) {
        auto* j = static_cast<GatewayJob*>(req->data);
        j->result = j->work();
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<GatewayJob> j(static_cast<GatewayJob*>(req->data));
        if (status != 0 || !j->result) return j->done(make_error("gateway request cancelled"));
        j->done(std::move(*j->result));
      });
  if (rv != 0) {
    job->done(make_error("cannot queue gateway request: {}", uv_strerror(rv)));
    return;
  }
  (void)job.release();  // owned by the request until its after-work callback
  busy_ = true;
}

void PortMapper::request(bool renew) {
  if (stopping_ || busy_) return;
  std::function<Result<GatewayMapping>()> work;
  if (renew && mapping_) {
    work = [m = *mapping_] { return renew_mapping(m); };
  } else {
    work = [port = port_, lifetime = config_.lifetime_s] { return map_udp_port(port, lifetime); };
  }
  run_job(std::move(work), [this, alive = alive_](Result<GatewayMapping> r) {
    if (*alive) on_result(std::move(r));
  });
}

void PortMapper::on_result(Result<GatewayMapping> r) {
  busy_ = false;
  if (r) {
    bool fresh = !mapping_ || mapping_->external_ip != r->external_ip || mapping_->external_port != r->external_port;
    mapping_ = std::move(*r);
    last_error_.clear();
    retry_ms_ = 0;
    if (fresh) {
      spdlog::info("port mapping added protocol={} external={}:{} internal_port={} lifetime_s={}",
                   to_string(mapping_->protocol), mapping_->external_ip, mapping_->external_port,
                   mapping_->internal_port, mapping_->lifetime_s);
    }
  } else {
    last_error_ = r.error().message;
    if (mapping_) {
      spdlog::warn("port mapping renewal failed protocol={} error={}", to_string(mapping_->protocol),
                   log_quote(last_error_));
      mapping_.reset();
    } else if (!unavailable_logged_) {
      spdlog::info("port mapping unavailable reason={}", log_quote(last_error_));
    } else {
      spdlog::debug("port mapping still unavailable reason={}", log_quote(last_error_));
    }
    unavailable_logged_ = true;
  }
  if (stopping_) return stop(nullptr);
  std::vector<Multiaddr> addrs;
  if (mapping_) {
    if (auto a = Multiaddr::parse(fmt::format("/ip4/{}/udp/{}/quic-v1", mapping_->external_ip, mapping_->external_port))) {
      addrs.push_back(*a);
    }
  }
  host_.set_mapped_addrs(std::move(addrs));
  if (mapping_) {
    if (auto after = renew_after_ms(mapping_->lifetime_s)) timer_->start(*after, 0, [this] { request(true); });
    return;
  }
  retry_ms_ = next_retry_ms(retry_ms_, config_);
  timer_->start(retry_ms_, 0, [this] { request(false); });
}

void PortMapper::stop(std::function<void()> done) {
  if (done) stop_done_ = std::move(done);
  stopping_ = true;
  timer_->stop();
  if (busy_) return;  // on_result comes back here
  auto finish = [this] {
    auto cb = std::move(stop_done_);
    stop_done_ = nullptr;
    if (cb) cb();
  };
  if (!mapping_) return finish();
  GatewayMapping m = *mapping_;
  mapping_.reset();
  run_job(
      [m]() -> Result<GatewayMapping> {
        if (auto st = remove_mapping(m); !st) return st.error();
        return m;
      },
      [alive = alive_, this, finish](Result<GatewayMapping> r) {
        if (!*alive) return;
        busy_ = false;
        if (r) {
          spdlog::info("port mapping removed protocol={} external={}:{}", to_string(r->protocol), r->external_ip,
                       r->external_port);
        } else {
          spdlog::warn("port mapping removal failed error={}", log_quote(r.error().message));
        }
        finish();
      });
}

}  // namespace punchgate
