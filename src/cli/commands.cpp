#include "cli/commands.hpp"

#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/ping_service.hpp"

#include <csignal>
#include <cstdio>
#include <memory>

namespace punchgate {

namespace {

// One libuv loop for the process, drained on exit so every handle's memory is released.
class EventLoop {
 public:
  EventLoop() { uv_loop_init(&loop_); }
  ~EventLoop() {
    // Let close callbacks of destroyed handles run, then release the loop.
    while (uv_run(&loop_, UV_RUN_NOWAIT) != 0) {
    }
    uv_loop_close(&loop_);
  }
  uv_loop_t* get() { return &loop_; }

 private:
  uv_loop_t loop_{};
};

Result<Identity> load_identity(const Config& cfg) {
  auto id = Identity::load_or_create(cfg.identity_path);
  if (!id) return make_error("{}", id.error().message);
  return id;
}

}  // namespace

int run_id(const Config& cfg) {
  auto id = load_identity(cfg);
  if (!id) {
    spdlog::error("{}", id.error().message);
    return 1;
  }
  std::printf("%s\n", id->peer_id().to_base58().c_str());
  return 0;
}

int run_node(const Config& cfg) {
  auto id = load_identity(cfg);
  if (!id) {
    spdlog::error("{}", id.error().message);
    return 1;
  }
  EventLoop loop;
  HostConfig hc;
  hc.listen = cfg.listen;
  hc.bootstrap = cfg.bootstrap;
  auto host = Host::create(loop.get(), std::move(*id), hc);
  if (!host) {
    spdlog::error("cannot start: {}", host.error().message);
    return 1;
  }
  if (auto st = (*host)->start(); !st) {
    spdlog::error("cannot start: {}", st.error().message);
    return 1;
  }
  auto on_signal = [&](int sig) {
    spdlog::info("shutting down signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    (*host)->shutdown("node shutting down");
    uv_stop(loop.get());
  };
  SignalWatcher sigint(loop.get(), SIGINT, on_signal);
  SignalWatcher sigterm(loop.get(), SIGTERM, on_signal);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  host->reset();
  spdlog::info("stopped");
  return 0;
}

int run_ping(const Config& cfg) {
  auto id = load_identity(cfg);
  if (!id) {
    spdlog::error("{}", id.error().message);
    return 1;
  }
  EventLoop loop;
  HostConfig hc;
  hc.listen = cfg.listen;
  hc.ping_interval_ms = 0;
  auto host_r = Host::create(loop.get(), std::move(*id), hc);
  if (!host_r) {
    spdlog::error("cannot start: {}", host_r.error().message);
    return 1;
  }
  Host& host = **host_r;
  if (auto st = host.start(); !st) {
    spdlog::error("cannot start: {}", st.error().message);
    return 1;
  }
  const PeerId target = *cfg.ping_target.peer_id();
  int exit_code = 1;
  bool pings_done = false;
  bool identified = false;
  Timer deadline(loop.get());
  Timer linger(loop.get());
  auto stop = [&] {
    host.shutdown("ping finished");
    uv_stop(loop.get());
  };
  auto maybe_stop = [&] {
    if (pings_done && identified) stop();
  };
  host.identify().add_observer([&](const IdentifyResult& r) {
    if (r.peer == target) {
      identified = true;
      maybe_stop();
    }
  });
  // A whole run is bounded: connect + pings + identify, so a dead peer never hangs the command.
  uint64_t budget_ms = 30'000 + cfg.ping_count * (cfg.ping_interval_ms + 20'000);
  deadline.start(budget_ms, 0, [&] {
    spdlog::error("ping timed out peer={}", target.to_base58());
    stop();
  });
  host.dial(cfg.ping_target, [&](Result<ConnectionPtr> conn) {
    if (!conn) {
      spdlog::error("dial failed addr={} error={}", cfg.ping_target.to_string(), conn.error().message);
      stop();
      return;
    }
    host.ping().ping(*conn, cfg.ping_count, cfg.ping_interval_ms,
                     [&](uint32_t seq, Result<PingService::Rtt> rtt, bool last) {
                       if (!rtt) {
                         spdlog::error("ping failed peer={} seq={} error={}", target.to_base58(), seq,
                                       rtt.error().message);
                         stop();
                         return;
                       }
                       double ms = std::chrono::duration<double, std::milli>(*rtt).count();
                       std::printf("ping peer=%s seq=%u rtt_ms=%.3f\n", target.to_base58().c_str(), seq, ms);
                       std::fflush(stdout);
                       if (last) {
                         exit_code = 0;
                         pings_done = true;
                         // Give identify a moment to finish so its result is logged too.
                         linger.start(5000, 0, stop);
                         maybe_stop();
                       }
                     });
  });
  uv_run(loop.get(), UV_RUN_DEFAULT);
  host_r.value().reset();
  return exit_code;
}

}  // namespace punchgate
