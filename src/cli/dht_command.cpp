// `punchgate dht …`: one DHT operation from the command line, for scripts and for checking what
// the network holds. Results go to stdout, logs to stderr.
#include "cli/commands.hpp"
#include "cli/event_loop.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/discovery/mdns_service.hpp"
#include "punchgate/kad/kad_service.hpp"

#include <csignal>
#include <cstdio>
#include <string>

namespace punchgate {

namespace {

// Joining: connect + identify + self lookup. Without bootstrap peers only mDNS could help.
constexpr uint64_t kJoinTimeoutMs = 20'000;

void print_line(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace

int run_dht(const Config& cfg) {
  EventLoop loop;
  HostConfig hc;
  hc.listen = cfg.listen;
  // A provider must be reachable to be useful: listen on an ephemeral port when none was given.
  if (hc.listen.empty() && cfg.dht_op == DhtOp::Provide) {
    hc.listen.push_back(*Multiaddr::parse("/ip4/0.0.0.0/udp/0/quic-v1"));
  }
  hc.bootstrap = cfg.bootstrap;
  hc.ping_interval_ms = 0;
  auto host = start_host(cfg, loop.get(), hc);
  if (!host) return 1;
  KadService kad(*host, KadConfig{});
  std::unique_ptr<MdnsService> mdns;
  if (cfg.mdns) {
    if (auto m = MdnsService::start(*host, MdnsConfig{})) mdns = std::move(*m);
  }
  int exit_code = 1;
  auto stop = [&] {
    if (mdns) mdns->stop();
    kad.stop();
    host->shutdown("dht command finished");
    uv_stop(loop.get());
  };
  if (cfg.bootstrap.empty() && !cfg.mdns) {
    spdlog::error("dht: no way to reach the DHT: give --bootstrap (or enable --mdns)");
    return 2;
  }

  auto run_op = [&] {
    if (!kad.joined()) {
      spdlog::error("dht: could not join the DHT within {} s (are the --bootstrap peers up?)", kJoinTimeoutMs / 1000);
      return stop();
    }
    switch (cfg.dht_op) {
      case DhtOp::FindProviders:
        kad.get_providers(cfg.dht_key, [&](const KadQueryResult& r) {
          for (const KadPeerInfo& p : r.providers) print_line(p.id.to_base58() + " " + join_multiaddrs(p.addrs));
          exit_code = r.providers.empty() ? 1 : 0;
          if (r.providers.empty()) spdlog::error("dht: no provider found");
          stop();
        });
        break;
      case DhtOp::Provide:
        kad.provide(cfg.dht_key, [&](const KadQueryResult& r) {
          print_line("provided peers=" + std::to_string(r.succeeded));
          exit_code = 0;  // stays up, re-announcing, until a signal
        });
        break;
      case DhtOp::Put:
        kad.put_value(cfg.dht_key, cfg.dht_value, [&](const KadQueryResult& r) {
          print_line("stored peers=" + std::to_string(r.succeeded));
          exit_code = r.succeeded > 0 ? 0 : 1;
          stop();
        });
        break;
      case DhtOp::Get:
        kad.get_value(cfg.dht_key, [&](const KadQueryResult& r) {
          if (r.records.empty()) {
            spdlog::error("dht: no value found");
          } else {
            const Bytes& v = r.records.front().value;
            std::fwrite(v.data(), 1, v.size(), stdout);
            std::fflush(stdout);
            exit_code = 0;
          }
          stop();
        });
        break;
      case DhtOp::FindPeer:
        kad.find_node(cfg.dht_peer, [&](const KadQueryResult& r) {
          std::vector<Multiaddr> addrs;
          if (r.peer) addrs = r.peer->addrs;
          if (const PeerInfo* p = host->peer_store().get(cfg.dht_peer)) {
            for (const Multiaddr& a : p->addrs) {
              if (std::find(addrs.begin(), addrs.end(), a) == addrs.end()) addrs.push_back(a);
            }
          }
          for (const Multiaddr& a : addrs) print_line(a.to_string());
          exit_code = addrs.empty() ? 1 : 0;
          if (addrs.empty()) spdlog::error("dht: no address found for peer={}", cfg.dht_peer.to_base58());
          stop();
        });
        break;
    }
  };
  kad.after_join(run_op, kJoinTimeoutMs);
  auto on_signal = [&](int) { stop(); };
  SignalWatcher sigint(loop.get(), SIGINT, on_signal);
  SignalWatcher sigterm(loop.get(), SIGTERM, on_signal);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  return exit_code;
}

}  // namespace punchgate
