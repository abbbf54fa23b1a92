#include "cli/commands.hpp"

#include "cli/event_loop.hpp"

#include "daemon/control_server.hpp"
#include "daemon/node_control.hpp"
#include "punchgate/core/log.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/host/host.hpp"
#include "punchgate/host/identify_service.hpp"
#include "punchgate/host/ping_service.hpp"
#include "punchgate/host/protocol_ids.hpp"
#include "punchgate/discovery/mdns_service.hpp"
#include "punchgate/kad/kad_service.hpp"
#include "punchgate/tunnel/tunnel_manager.hpp"
#include "autonat/autonat_service.hpp"
#include "autonat/relay_roles.hpp"
#include "holepunch/hole_puncher.hpp"
#include "portmap/port_mapper.hpp"
#include "relay/relay_client.hpp"
#include "relay/relay_service.hpp"
#include "tunnel/peer_connector.hpp"
#include "tunnel/stdio_local_end.hpp"
#include "tunnel/tunnel_handshake.hpp"
#include "tunnel/tunnel_target.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>

namespace punchgate {

namespace {

Result<Identity> load_identity(const Config& cfg) {
  auto id = Identity::load_or_create(cfg.identity_path);
  if (!id) return make_error("{}", id.error().message);
  return id;
}

// The bootstrap list plus the --relay-mode relay, which is dialed (and redialed) the same way.
std::vector<Multiaddr> with_fixed_relay(const Config& cfg) {
  std::vector<Multiaddr> out = cfg.bootstrap;
  if (cfg.relay.mode == RelayMode::Fixed && cfg.relay.fixed_relay &&
      std::find(out.begin(), out.end(), *cfg.relay.fixed_relay) == out.end()) {
    out.push_back(*cfg.relay.fixed_relay);
  }
  return out;
}

}  // namespace

// Loads the identity, creates the host and starts it (listen + bootstrap); errors are logged.
std::unique_ptr<Host> start_host(const Config& cfg, uv_loop_t* loop, HostConfig hc,
                                 const std::function<void(Host&)>& before_start) {
  auto id = load_identity(cfg);
  if (!id) {
    spdlog::error("{}", id.error().message);
    return nullptr;
  }
  auto host = Host::create(loop, std::move(*id), std::move(hc));
  if (!host) {
    spdlog::error("cannot start: {}", host.error().message);
    return nullptr;
  }
  if (before_start) before_start(**host);
  if (auto st = (*host)->start(); !st) {
    spdlog::error("cannot start: {}", st.error().message);
    return nullptr;
  }
  return std::move(*host);
}

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
  EventLoop loop;
  HostConfig hc;
  hc.listen = cfg.listen;
  hc.bootstrap = with_fixed_relay(cfg);
  hc.allow = cfg.allow;
  const bool has_bootstrap = !cfg.bootstrap.empty();
  std::unique_ptr<RelayService> relay_server;
  std::unique_ptr<RelayClient> relay_client;
  std::unique_ptr<HolePuncher> hole_puncher;
  std::unique_ptr<AutonatService> autonat;
  auto host = start_host(cfg, loop.get(), hc, [&](Host& h) {
    autonat = std::make_unique<AutonatService>(h, AutonatConfig{});
    // Until AutoNAT knows better, --bootstrap decides: without it a node is taken to be public.
    RelayRoles roles = decide_relay_roles(cfg.relay, RelayRoleFacts{.has_bootstrap = has_bootstrap});
    if (cfg.relay.server != RelayServerMode::Off) {
      relay_server = std::make_unique<RelayService>(h, cfg.relay.limits, roles.serve);
    }
    relay_client = std::make_unique<RelayClient>(h, cfg.relay, roles.reserve);
    autonat->add_change_observer([&cfg, &h, &relay_server, &relay_client, has_bootstrap](
                                     Reachability r, const std::optional<Multiaddr>& public_addr) {
      RelayRoleFacts facts{has_bootstrap, r, ip_is_own(public_addr, h.listen_addrs())};
      RelayRoles next = decide_relay_roles(cfg.relay, facts);
      RelayRoles now{relay_server && relay_server->serving(), relay_client->reserving()};
      if (next == now) return;
      spdlog::info("relay roles changed {} reachability={} public_addr_is_own={}", to_string(next), to_string(r),
                   facts.public_addr_is_own);
      if (relay_server) relay_server->set_serving(next.serve);
      relay_client->set_reserving(next.reserve);
    });
    hole_puncher = std::make_unique<HolePuncher>(h, HolePunchConfig{.enabled = cfg.holepunch, .hard_nat = cfg.hard_nat});
  });
  if (!host) return 1;
  std::unique_ptr<PortMapper> port_mapper;
  if (cfg.port_mapping) {
    PortMapperConfig pm;
    pm.params.lifetime_s = cfg.port_mapping_lease_s;
    port_mapper = std::make_unique<PortMapper>(*host, pm);
    port_mapper->start();
  }
  KadService kad(*host, KadConfig{});
  std::unique_ptr<MdnsService> mdns;
  if (cfg.mdns) {
    auto m = MdnsService::start(*host, MdnsConfig{});
    // A LAN convenience: without it the node still works through the DHT, so only warn.
    if (!m) spdlog::warn("mdns unavailable reason={}", log_quote(m.error().message));
    else mdns = std::move(*m);
  }
  TunnelManager tunnels(*host, &kad, cfg.exposes, cfg.tunnels);
  if (auto st = tunnels.start(); !st) {
    spdlog::error("cannot start: {}", st.error().message);
    host->shutdown("startup failed");
    return 1;
  }
  NodeControl control(*host, &kad, tunnels,
                      NodeFacts{cfg.bootstrap.empty() ? "public" : "private", cfg.control_socket.string()});
  control.set_relay(relay_client.get(), relay_server.get());
  control.set_hole_puncher(hole_puncher.get());
  control.set_port_mapper(port_mapper.get());
  control.set_autonat(autonat.get());
  std::unique_ptr<ControlServer> control_server;
  if (!cfg.control_socket.empty()) {
    control_server = std::make_unique<ControlServer>(loop.get(), cfg.control_socket, control);
    if (auto st = control_server->start(); !st) {
      // The node itself works without it; only status and runtime changes are unavailable.
      spdlog::warn("control socket unavailable reason={}", log_quote(st.error().message));
      control_server.reset();
    } else {
      control.set_publisher([&](const nlohmann::json& ev) { control_server->publish(ev); });
    }
  }
  auto on_signal = [&](int sig) {
    spdlog::info("shutting down signal={}", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (control_server) control_server->close();
    tunnels.shutdown();
    if (mdns) mdns->stop();
    kad.stop();
    if (relay_server) relay_server->stop();
    host->shutdown("node shutting down");
    // The gateway mapping is deleted last; the loop ends once that is done (at most ~2 s).
    if (port_mapper) port_mapper->stop([&loop] { uv_stop(loop.get()); });
    else uv_stop(loop.get());
  };
  SignalWatcher sigint(loop.get(), SIGINT, on_signal);
  SignalWatcher sigterm(loop.get(), SIGTERM, on_signal);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  if (control_server) control_server->close();
  control.set_publisher(nullptr);
  tunnels.shutdown();
  if (mdns) mdns->stop();
  kad.stop();
  spdlog::info("stopped");
  return 0;
}

namespace {

int pipe_session(const Config& cfg) {
  EventLoop loop;
  HostConfig hc;
  hc.listen = cfg.listen;
  hc.bootstrap = with_fixed_relay(cfg);
  hc.ping_interval_ms = 0;
  // Dial through relays, never reserve: a pipe is a short-lived client.
  RelayConfig relay = cfg.relay;
  relay.target_reservations = 0;
  std::unique_ptr<RelayClient> relay_client;
  auto host_r = start_host(cfg, loop.get(), hc, [&](Host& h) {
    relay_client = std::make_unique<RelayClient>(h, relay, /*reserving=*/false);
  });
  if (!host_r) return 1;
  Host& host = *host_r;
  auto local = StdioLocalEnd::open(loop.get(), 0, 1);
  if (!local) {
    spdlog::error("pipe: {}", local.error().message);
    return 1;
  }
  int exit_code = 1;
  std::unique_ptr<LocalEnd> local_end = std::move(*local);
  std::shared_ptr<TcpBridge> bridge;
  PeerConnector connector(host, nullptr);
  auto stop = [&] {
    host.shutdown("pipe finished");
    uv_stop(loop.get());
  };
  const std::string peer = cfg.pipe_peer.to_base58();
  auto fail = [&](const std::string& why) {
    spdlog::error("pipe failed peer={} service={} reason={}", peer, cfg.pipe_service, log_quote(why));
    stop();
  };
  connector.connect(cfg.pipe_peer, [&](Result<ConnectionPtr> conn) {
    if (!conn) return fail(conn.error().message);
    host.open_stream(*conn, {std::string(kTunnelProtocol)}, [&](Result<NegotiatedStream> ns) {
      if (!ns) return fail(ns.error().message);
      request_tunnel(host, ns->stream, std::move(ns->leftover), cfg.pipe_service,
                     [&](Result<OpenedTunnel> t, bool rejected) {
                       if (!t) return fail(rejected ? "rejected: " + t.error().message : t.error().message);
                       spdlog::info("client tunnel opened peer={} service={} bind=stdio", peer, cfg.pipe_service);
                       bridge = TcpBridge::start(std::move(local_end), t->stream, std::move(t->rest),
                                                 [&](const BridgeStats& st, const std::string& reason) {
                                                   spdlog::info("client tunnel closed peer={} service={} "
                                                                "bytes_sent={} bytes_received={} reason={}",
                                                                peer, cfg.pipe_service, st.bytes_to_stream,
                                                                st.bytes_from_stream, log_quote(reason));
                                                   exit_code = reason == "closed" ? 0 : 1;
                                                   stop();
                                                 });
                     });
    });
  });
  auto on_signal = [&](int) {
    if (bridge) bridge->abort("interrupted");
    stop();
  };
  SignalWatcher sigint(loop.get(), SIGINT, on_signal);
  SignalWatcher sigterm(loop.get(), SIGTERM, on_signal);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  bridge.reset();
  host_r.reset();
  local_end.reset();
  return exit_code;
}

}  // namespace

int run_pipe(const Config& cfg) {
  int rc = pipe_session(cfg);
  // The loop is gone and stdout's relay socket closed: let a file relay finish writing.
  join_stdio_threads();
  return rc;
}

int run_ping(const Config& cfg) {
  EventLoop loop;
  HostConfig hc;
  hc.listen = cfg.listen;
  hc.ping_interval_ms = 0;
  auto host_r = start_host(cfg, loop.get(), hc);
  if (!host_r) return 1;
  Host& host = *host_r;
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
  host_r.reset();
  return exit_code;
}

}  // namespace punchgate
