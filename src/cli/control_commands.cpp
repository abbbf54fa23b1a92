// Clients of a running node's control socket: status, tunnel add/rm, expose add/rm.
#include "cli/commands.hpp"

#include "daemon/control_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace punchgate {

namespace {

using nlohmann::json;

// Exit codes: 3 = not running (as systemctl status uses for an inactive unit), 1 = other failure.
constexpr int kExitNotRunning = 3;

std::string human_bytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string human_duration(int64_t s) {
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m {}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h {}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d {}h", s / 86400, (s % 86400) / 3600);
}

std::string traffic_text(const json& t) {
  return fmt::format("active {}, total {}, sent {}, received {}", t.value("active_connections", 0),
                     t.value("total_connections", 0), human_bytes(t.value("bytes_sent", uint64_t{0})),
                     human_bytes(t.value("bytes_received", uint64_t{0})));
}

void print_list(const char* label, const json& items) {
  if (!items.is_array() || items.empty()) {
    std::printf("%-12s (none)\n", label);
    return;
  }
  std::printf("%-12s %s\n", label, items[0].get<std::string>().c_str());
  for (size_t i = 1; i < items.size(); ++i) std::printf("%-12s %s\n", "", items[i].get<std::string>().c_str());
}

// The gateway port mappings, one line each.
void print_port_mapping(const json& pm) {
  const char* label = "gateway:";
  auto str = [](const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!pm.is_object() || !pm.value("enabled", false)) {
    std::printf("%-12s port mapping off\n", label);
    return;
  }
  const json list = pm.value("mappings", json::array());
  if (list.empty()) std::printf("%-12s no IPv4 LAN listen address to map\n", label);
  for (const json& m : list) {
    std::string state = str(m, "state");
    std::string line = fmt::format("port {}: {}", m.value("internal_port", 0),
                                   state == "mapping" ? std::string("asking the gateway") : state);
    if (!str(m, "external_addr").empty()) {
      line = fmt::format("{} -> port {} via {}{}", str(m, "external_addr"), m.value("internal_port", 0),
                         str(m, "protocol"), m.value("advertised", false) ? "" : " (not advertised: not public)");
    } else if (!str(m, "last_error").empty()) {
      line += ": " + str(m, "last_error");
    }
    std::printf("%-12s %s\n", label, line.c_str());
    label = "";
  }
}

void print_status(const json& s) {
  std::printf("punchgate is running: %s, up %s, pid %lld\n", s.value("version", "?").c_str(),
              human_duration(s.value("uptime_s", int64_t{0})).c_str(), static_cast<long long>(s.value("pid", 0)));
  std::printf("%-12s %s\n", "peer id:", s.value("peer_id", "?").c_str());
  std::printf("%-12s %s (NAT reachability: %s)\n", "role:", s.value("role", "?").c_str(),
              s.value("nat_reachability", "unknown").c_str());
  print_list("listening:", s.value("listen_addrs", json::array()));
  print_list("external:", s.value("external_addrs", json::array()));
  print_port_mapping(s.value("port_mapping", json::object()));
  std::printf("%-12s %zu peers in the routing table\n", "dht:",
              s.value("/dht/routing_table_size"_json_pointer, size_t{0}));
  const json relay = s.value("relay", json::object());
  const json held = relay.value("reservations_held", json::array());
  if (relay.value("serving", false)) {
    std::printf("%-12s %zu reservations held; serving %zu reservations, %zu circuits\n", "relay:", held.size(),
                relay.value("reservations_served", size_t{0}), relay.value("circuits_served", size_t{0}));
  } else {
    std::printf("%-12s %zu reservations held; not serving\n", "relay:", held.size());
  }
  for (const json& r : held) {
    for (const json& a : r.value("addrs", json::array())) {
      if (a.is_string()) std::printf("  via %s\n", a.get<std::string>().c_str());
    }
  }
  const json peers = s.value("peers", json::array());
  std::printf("peers (%zu):\n", peers.size());
  for (const json& p : peers) {
    std::string rtt = p.contains("rtt_ms") && p["rtt_ms"].is_number()
                          ? fmt::format("{:.1f} ms", p["rtt_ms"].get<double>())
                          : std::string("-");
    std::printf("  %s  %-7s %-9s %s\n", p.value("peer_id", "?").c_str(), p.value("connection", "?").c_str(),
                rtt.c_str(), p.value("address", "").c_str());
  }
  const json exposes = s.value("exposes", json::array());
  std::printf("exposes (%zu):\n", exposes.size());
  for (const json& e : exposes) {
    std::printf("  %s -> %s/%s  %s\n", e.value("name", "?").c_str(), e.value("target", "?").c_str(),
                e.value("transport", "tcp").c_str(), traffic_text(e).c_str());
  }
  const json tunnels = s.value("tunnels", json::array());
  std::printf("tunnels (%zu):\n", tunnels.size());
  for (const json& t : tunnels) {
    std::string peer = t.contains("peer") && t["peer"].is_string() ? t["peer"].get<std::string>() : "any provider";
    std::printf("  %s/%s -> %s (%s)  %s\n", t.value("bind", "?").c_str(), t.value("transport", "tcp").c_str(),
                t.value("service", "?").c_str(), peer.c_str(), traffic_text(t).c_str());
  }
}

}  // namespace

int run_status(const Config& cfg) {
  if (cfg.control_socket.empty()) {
    std::fprintf(stderr, "punchgate: status needs a control socket (--control-socket is off)\n");
    return 2;
  }
  auto r = control_call(cfg.control_socket, "status");
  if (!r) {
    std::fprintf(stderr, "punchgate: %s\n", r.error().message.c_str());
    return r.error().kind == ControlCallError::NotRunning ? kExitNotRunning : 1;
  }
  if (cfg.json) {
    std::printf("%s\n", (*r).dump(2).c_str());
  } else {
    print_status(*r);
  }
  return 0;
}

int run_control_change(const Config& cfg) {
  std::string method;
  json params;
  switch (cfg.command) {
    case Command::TunnelAdd:
      method = "tunnel.add";
      params = {{"spec", cfg.control_arg}, {"by_name", cfg.by_name}};
      break;
    case Command::TunnelRm:
      method = "tunnel.rm";
      params = {{"bind", cfg.control_arg}};
      break;
    case Command::ExposeAdd:
      method = "expose.add";
      params = {{"spec", cfg.control_arg}};
      break;
    default:
      method = "expose.rm";
      params = {{"name", cfg.control_arg}};
      break;
  }
  if (cfg.control_socket.empty()) {
    std::fprintf(stderr, "punchgate: %s needs a control socket (--control-socket is off)\n", method.c_str());
    return 2;
  }
  auto r = control_call(cfg.control_socket, method, params);
  if (!r) {
    std::fprintf(stderr, "punchgate: %s\n", r.error().message.c_str());
    return r.error().kind == ControlCallError::NotRunning ? kExitNotRunning : 1;
  }
  if (cfg.command == Command::TunnelAdd) {
    const json& t = (*r)["tunnel"];
    std::printf("tunnel added: %s/%s -> %s\n", t.value("bind", "?").c_str(), t.value("transport", "tcp").c_str(),
                t.value("service", "?").c_str());
  } else if (cfg.command == Command::ExposeAdd) {
    const json& e = (*r)["expose"];
    std::printf("exposing %s -> %s/%s\n", e.value("name", "?").c_str(), e.value("target", "?").c_str(),
                e.value("transport", "tcp").c_str());
  } else {
    std::printf("removed %s\n", cfg.control_arg.c_str());
  }
  return 0;
}

int wait_until_answering(const Config& cfg, uint64_t timeout_ms) {
  if (cfg.control_socket.empty()) {
    std::printf("control socket is off: not waiting for the node to answer\n");
    return 0;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = control_call(cfg.control_socket, "status", json::object(), std::chrono::milliseconds(2000));
    if (r) {
      print_list("listening:", r->value("listen_addrs", json::array()));
      return 0;
    }
    last = r.error().message;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::fprintf(stderr, "punchgate: the node did not answer within %llu s (%s); see `punchgate logs`\n",
               static_cast<unsigned long long>(timeout_ms / 1000), last.c_str());
  return 1;
}

}  // namespace punchgate
