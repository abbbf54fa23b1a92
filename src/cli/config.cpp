#include "cli/config.hpp"

#include "punchgate/kad/kad_message.hpp"

#include "punchgate/host/protocol_ids.hpp"

#include <CLI/CLI.hpp>

#include "cli/relay_options.hpp"
#include "relay/circuit_addr.hpp"
#include "daemon/service_paths.hpp"

#include <charconv>
#include <cstdlib>
#include <map>

namespace punchgate {

namespace {

constexpr char kDefaultListen[] = "/ip4/0.0.0.0/udp/0/quic-v1";

// Values from a repeatable flag, or from the environment variable when the flag is absent.
std::vector<std::string> flag_or_env(const std::vector<std::string>& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v ? split_env_list(v) : std::vector<std::string>{};
}

// --port-mapping-lease, else PUNCHGATE_PORT_MAPPING_LEASE: whole seconds, 10 s to a week (IGDv2's
// longest lease). `text` keeps what was given, for the service env file.
Status parse_port_mapping_lease(std::string& text, uint32_t& out) {
  if (text.empty()) {
    const char* env = std::getenv("PUNCHGATE_PORT_MAPPING_LEASE");
    text = env ? env : "";
  }
  if (text.empty()) return {};
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 10 || v > 7 * 24 * 3600) {
    return make_error("invalid --port-mapping-lease \"{}\": expected whole seconds from 10 to 604800", text);
  }
  out = static_cast<uint32_t>(v);
  return {};
}

}  // namespace

// "a,b , c" -> {"a","b","c"}: items trimmed of blanks, empty items dropped; "\\," and "\\\\"
// stand for a comma and a backslash inside an item.
std::vector<std::string> split_env_list(const std::string& s) {
  std::vector<std::string> out;
  auto push = [&](const std::string& item) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  };
  std::string item;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == ',' || s[i + 1] == '\\')) {
      item.push_back(s[++i]);
    } else if (s[i] == ',') {
      push(item);
      item.clear();
    } else {
      item.push_back(s[i]);
    }
  }
  push(item);
  return out;
}

std::string join_env_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out.push_back(',');
    for (char c : item) {
      if (c == ',' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
  }
  return out;
}

Status apply_env_file_arg(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    std::string path;
    if (a == "--env-file") {
      if (i + 1 >= argc) return make_error("--env-file needs a path");
      path = argv[i + 1];
    } else if (a.starts_with("--env-file=")) {
      path = std::string(a.substr(11));
    } else {
      continue;
    }
    auto vars = read_env_file(path);
    if (!vars) return make_error("cannot read --env-file \"{}\": {}", path, vars.error().message);
    for (const auto& [k, v] : *vars) setenv(k.c_str(), v.c_str(), 1);
  }
  return {};
}

Result<Multiaddr> parse_listen_addr(const std::string& text) {
  auto m = Multiaddr::parse(text);
  if (!m) return make_error("invalid --listen address \"{}\": {}", text, m.error().message);
  auto ep = quic_endpoint_of(*m);
  if (!ep) return make_error("invalid --listen address \"{}\": {}", text, ep.error().message);
  if (ep->is_dns) return make_error("invalid --listen address \"{}\": listen on an IP address, not a name", text);
  if (m->peer_id()) return make_error("invalid --listen address \"{}\": must not contain /p2p/", text);
  return m;
}

Result<Multiaddr> parse_peer_addr(const std::string& text, const char* what) {
  auto m = Multiaddr::parse(text);
  if (!m) return make_error("invalid {} address \"{}\": {}", what, text, m.error().message);
  if (m->is_relayed()) {
    // <relay QUIC addr>/p2p/<R>/p2p-circuit/p2p/<peer>: reached through relay R.
    auto c = parse_circuit_addr(*m);
    if (!c) return make_error("invalid {} address \"{}\": {}", what, text, c.error().message);
    if (!c->target) return make_error("invalid {} address \"{}\": it must end in /p2p/<peer id>", what, text);
    if (auto ep = quic_endpoint_of(c->relay); !ep) {
      return make_error("invalid {} address \"{}\": relay part: {}", what, text, ep.error().message);
    }
    return m;
  }
  auto ep = quic_endpoint_of(*m);
  if (!ep) return make_error("invalid {} address \"{}\": {}", what, text, ep.error().message);
  if (!m->peer_id()) return make_error("invalid {} address \"{}\": it must end in /p2p/<peer id>", what, text);
  return m;
}

Result<Bytes> parse_dht_key(const std::string& text) {
  if (text.empty()) return make_error("invalid dht key: it is empty");
  if (text.size() > kMaxKadKeySize * 2 + 4) return make_error("invalid dht key: longer than {} bytes", kMaxKadKeySize);
  if (!text.starts_with("hex:")) {
    if (text.size() > kMaxKadKeySize) return make_error("invalid dht key: longer than {} bytes", kMaxKadKeySize);
    return Bytes(text);
  }
  auto out = from_hex(std::string_view(text).substr(4));
  if (!out || out->empty()) {
    return make_error("invalid dht key \"{}\": hex: needs an even, non-zero number of hex digits", text);
  }
  return *out;
}

namespace {

Status parse_dht_operation(const std::string& op, const std::vector<std::string>& args, Config& cfg) {
  static const std::map<std::string, std::pair<DhtOp, size_t>> kOps = {
      {"find-providers", {DhtOp::FindProviders, 1}}, {"provide", {DhtOp::Provide, 1}}, {"put", {DhtOp::Put, 2}},
      {"get", {DhtOp::Get, 1}}, {"find-peer", {DhtOp::FindPeer, 1}}};
  auto it = kOps.find(op);
  if (it == kOps.end()) {
    return make_error("invalid dht operation \"{}\": expected find-providers, provide, put, get or find-peer", op);
  }
  auto [kind, nargs] = it->second;
  if (args.size() != nargs) {
    return make_error("dht {} takes {} argument{} ({} given)", op, nargs, nargs == 1 ? "" : "s", args.size());
  }
  cfg.dht_op = kind;
  if (kind == DhtOp::FindPeer) {
    auto p = PeerId::parse(args[0]);
    if (!p) return make_error("invalid dht peer id \"{}\": {}", args[0], p.error().message);
    cfg.dht_peer = *p;
    return {};
  }
  auto k = parse_dht_key(args[0]);
  if (!k) return k.error();
  cfg.dht_key = *k;
  if (kind == DhtOp::Put) {
    if (args[1].size() > kMaxKadRecordValueSize) {
      return make_error("dht value is {} bytes (at most {})", args[1].size(), kMaxKadRecordValueSize);
    }
    cfg.dht_value = args[1];
  }
  return {};
}

}  // namespace

namespace {

struct ServiceCommands {
  CLI::App* up;
  CLI::App* down;
  CLI::App* status;
  CLI::App* logs;
  CLI::App* tunnel_add;
  CLI::App* tunnel_rm;
  CLI::App* expose_add;
  CLI::App* expose_rm;
  CLI::App* supervise;
  CLI::App* unit;
};

ServiceCommands add_service_commands(CLI::App& app, Config& cfg) {
  ServiceCommands c{};
  c.up = app.add_subcommand("up",
                            "install and start punchgate as a per-user service with these flags (systemd --user, "
                            "launchd, or a supervised background process)");
  c.down = app.add_subcommand("down", "stop the service and remove what `up` installed");
  c.status = app.add_subcommand("status", "show the running node (exit 3 when none is running)");
  c.status->add_flag("--json", cfg.json, "print the full status as JSON");
  c.logs = app.add_subcommand("logs", "print the service's log");
  c.logs->add_flag("-f,--follow", cfg.follow, "keep printing new lines");
  c.logs->add_option("-n,--lines", cfg.log_lines, "lines to show")->check(CLI::Range(size_t{1}, size_t{1'000'000}));

  auto* tunnel = app.add_subcommand("tunnel", "change the running node's tunnels");
  c.tunnel_add = tunnel->add_subcommand("add", "add a tunnel: PEER:SVC@BINDHOST:PORT[/udp], or with --by-name "
                                               "SVC@BINDHOST:PORT[/udp]");
  c.tunnel_add->add_option("spec", cfg.control_arg, "tunnel spec")->required();
  c.tunnel_add->add_flag("--by-name", cfg.by_name, "reach any provider of the service found in the DHT");
  c.tunnel_rm = tunnel->add_subcommand("rm", "remove the tunnel bound to BINDHOST:PORT[/udp]");
  c.tunnel_rm->add_option("bind", cfg.control_arg, "local bind address of the tunnel")->required();
  tunnel->require_subcommand(1);
  auto* expose = app.add_subcommand("expose", "change the running node's exposed services");
  c.expose_add = expose->add_subcommand("add", "expose a local service: NAME=HOST:PORT[/udp]");
  c.expose_add->add_option("spec", cfg.control_arg, "expose spec")->required();
  c.expose_rm = expose->add_subcommand("rm", "stop exposing the service NAME");
  c.expose_rm->add_option("name", cfg.control_arg, "service name")->required();
  expose->require_subcommand(1);

  // Internal: the fallback supervisor `up` starts, and the unit text `up` would install.
  c.supervise = app.add_subcommand("supervise", "")->group("");
  c.unit = app.add_subcommand("service-unit", "")->group("");
  c.unit->add_option("kind", cfg.unit_kind, "systemd or launchd")->required()->check(CLI::IsMember({"systemd", "launchd"}));
  return c;
}

// Sets cfg.command for the service subcommands and validates their arguments.
// A --x/--no-x switch: the command line wins, then the environment variable, then the default
// already in `out`. (CLI11 fills the bool even when the flag is absent, hence the count.)
Status resolve_switch(const CLI::Option* flag, bool flag_value, const char* env_name, bool& out) {
  if (flag->count() > 0) {
    out = flag_value;
    return {};
  }
  const char* env = std::getenv(env_name);
  if (!env || !*env) return {};
  std::string v = env;
  if (v == "1" || v == "true" || v == "on" || v == "yes") {
    out = true;
  } else if (v == "0" || v == "false" || v == "off" || v == "no") {
    out = false;
  } else {
    return make_error("invalid {} \"{}\": expected true or false", env_name, v);
  }
  return {};
}

Status finish_service_command(const ServiceCommands& c, Config& cfg) {
  if (c.up->parsed()) cfg.command = Command::Up;
  if (c.down->parsed()) cfg.command = Command::Down;
  if (c.status->parsed()) cfg.command = Command::ShowStatus;
  if (c.logs->parsed()) cfg.command = Command::Logs;
  if (c.supervise->parsed()) cfg.command = Command::Supervise;
  if (c.unit->parsed()) cfg.command = Command::ServiceUnit;
  if (c.tunnel_add->parsed()) {
    cfg.command = Command::TunnelAdd;
    auto spec = cfg.by_name ? parse_tunnel_by_name(cfg.control_arg) : parse_tunnel(cfg.control_arg);
    if (!spec) return spec.error();
  }
  if (c.tunnel_rm->parsed()) {
    cfg.command = Command::TunnelRm;
    if (auto b = parse_tunnel_bind(cfg.control_arg); !b) return b.error();
  }
  if (c.expose_add->parsed()) {
    cfg.command = Command::ExposeAdd;
    if (auto spec = parse_expose(cfg.control_arg); !spec) return spec.error();
  }
  if (c.expose_rm->parsed()) {
    cfg.command = Command::ExposeRm;
    if (auto st = validate_service_name(cfg.control_arg); !st) {
      return make_error("invalid service name \"{}\": {}", cfg.control_arg, st.error().message);
    }
  }
  return {};
}

}  // namespace

Result<Config> parse_command_line(int argc, char** argv, int& exit_code) {
  exit_code = 0;
  Config cfg;
  CLI::App app{"punchgate: reach TCP and UDP services on any machine, through NATs, peer to peer", "punchgate"};
  app.set_version_flag("--version", agent_version());
  std::string identity, control_socket, env_file;
  std::vector<std::string> listen, bootstrap;
  app.add_option("--env-file", env_file,
                 "read PUNCHGATE_* variables from this file first (what launchd and the supervisor use)")
      ->type_name("PATH");
  app.add_option("--control-socket", control_socket,
                 "control socket path, or \"off\" (env PUNCHGATE_CONTROL_SOCKET; default "
                 "$XDG_RUNTIME_DIR/punchgate/control.sock)")
      ->type_name("PATH");
  app.add_option("--identity", identity,
                 "identity key file (env PUNCHGATE_IDENTITY; default $XDG_DATA_HOME/punchgate/identity.key)");
  app.add_option("--listen", listen, "listen multiaddr, repeatable (env PUNCHGATE_LISTEN, comma-separated)")
      ->type_name("MULTIADDR");
  app.add_option("--bootstrap", bootstrap,
                 "peer to dial at start, /…/p2p/ID, repeatable (env PUNCHGATE_BOOTSTRAP, comma-separated)")
      ->type_name("MULTIADDR");

  std::vector<std::string> expose, tunnel, allow;
  app.add_option("--expose", expose,
                 "expose a local service: NAME=HOST:PORT[/udp], repeatable (env PUNCHGATE_EXPOSE)")
      ->type_name("SPEC");
  app.add_option("--tunnel", tunnel,
                 "map a peer's service to a local port: PEER:SVC@BINDHOST:PORT[/udp], repeatable "
                 "(env PUNCHGATE_TUNNEL)")
      ->type_name("SPEC");
  std::vector<std::string> tunnel_by_name;
  app.add_option("--tunnel-by-name", tunnel_by_name,
                 "map any provider of a service found in the DHT to a local port: SVC@BINDHOST:PORT[/udp], "
                 "repeatable (env PUNCHGATE_TUNNEL_BY_NAME)")
      ->type_name("SPEC");
  bool mdns = true;
  RelayOptionText relay_text;
  add_relay_options(app, relay_text);
  auto* mdns_flag =
      app.add_flag("--mdns,!--no-mdns", mdns, "find peers on the local network with mDNS (default on; env PUNCHGATE_MDNS)");
  bool holepunch = true;
  auto* holepunch_flag = app.add_flag("--holepunch,!--no-holepunch", holepunch,
                                      "upgrade relayed connections to direct ones by hole punching (DCUtR; "
                                      "default on; env PUNCHGATE_HOLEPUNCH)");
  bool hard_nat = true;
  auto* hard_nat_flag = app.add_flag("--hard-nat,!--no-hard-nat", hard_nat,
                                     "when one side's NAT maps each peer to a different port, add a bounded "
                                     "birthday punch (many sockets / probes) to hole punching (default on; env "
                                     "PUNCHGATE_HARD_NAT)");
  bool port_mapping = true;
  auto* port_mapping_flag = app.add_flag("--port-mapping,!--no-port-mapping", port_mapping,
                                         "ask the home gateway (NAT-PMP, UPnP-IGD) to forward our QUIC port and "
                                         "advertise the mapped address (default on; env PUNCHGATE_PORT_MAPPING)");
  std::string port_mapping_lease;
  app.add_option("--port-mapping-lease", port_mapping_lease,
                 "seconds a gateway port mapping is asked for, renewed at half of it (default 3600; env "
                 "PUNCHGATE_PORT_MAPPING_LEASE)")
      ->type_name("SECONDS");
  app.add_option("--allow", allow,
                 "only these peers may connect to us, repeatable (env PUNCHGATE_ALLOW); default: any peer")
      ->type_name("PEER_ID");

  auto* id_cmd = app.add_subcommand("id", "print this node's peer id (creating the identity if missing)");
  auto* ping_cmd = app.add_subcommand("ping", "dial a peer and print the round-trip time of each ping");
  std::string ping_target;
  ping_cmd->add_option("address", ping_target, "peer multiaddr ending in /p2p/<peer id>")->required();
  ping_cmd->add_option("-c,--count", cfg.ping_count, "number of pings")->check(CLI::Range(1u, 100000u));
  ping_cmd->add_option("--interval-ms", cfg.ping_interval_ms, "pause between pings")->check(CLI::Range(0u, 3600000u));
  auto* pipe_cmd = app.add_subcommand("pipe", "one tunnel on stdin/stdout (e.g. ssh ProxyCommand)");
  std::string pipe_peer;
  pipe_cmd->add_option("peer", pipe_peer, "peer id of the provider")->required();
  pipe_cmd->add_option("service", cfg.pipe_service, "service name")->required();
  auto* dht_cmd = app.add_subcommand(
      "dht",
      "one DHT operation: find-providers KEY | provide KEY | put KEY VALUE | get KEY | find-peer PEER "
      "(KEY: text, or hex:<bytes>)");
  std::string dht_op;
  std::vector<std::string> dht_args;
  dht_cmd->add_option("operation", dht_op, "find-providers, provide, put, get or find-peer")->required();
  dht_cmd->add_option("args", dht_args, "KEY [VALUE] or PEER");
  // Declared here too so they may sit between `dht` and its operation (fallthrough alone would
  // end positional parsing of the subcommand there).
  dht_cmd->add_option("--identity", identity, "identity key file");
  dht_cmd->add_option("--listen", listen, "listen multiaddr")->type_name("MULTIADDR")->allow_extra_args(false);
  dht_cmd->add_option("--bootstrap", bootstrap, "peer to join the DHT through")
      ->type_name("MULTIADDR")
      ->allow_extra_args(false);
  auto* dht_mdns_flag = dht_cmd->add_flag("--mdns,!--no-mdns", mdns, "find peers on the local network with mDNS");
  ServiceCommands svc = add_service_commands(app, cfg);
  app.require_subcommand(0, 1);
  // Global options may also follow the subcommand (punchgate pipe <B> ssh --bootstrap …).
  for (auto* sub : {id_cmd, ping_cmd, pipe_cmd, dht_cmd, svc.up, svc.status, svc.down, svc.logs, svc.supervise,
                    svc.unit}) {
    sub->fallthrough();
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      exit_code = app.exit(e);
      return make_error("");
    }
    exit_code = 2;
    return make_error("{}", e.what());
  }

  if (id_cmd->parsed()) cfg.command = Command::Id;
  if (ping_cmd->parsed()) {
    cfg.command = Command::Ping;
    auto t = parse_peer_addr(ping_target, "ping");
    if (!t) return exit_code = 2, t.error();
    cfg.ping_target = *t;
  }

  if (pipe_cmd->parsed()) {
    cfg.command = Command::Pipe;
    auto p = PeerId::parse(pipe_peer);
    if (!p) return exit_code = 2, make_error("invalid pipe peer id \"{}\": {}", pipe_peer, p.error().message);
    cfg.pipe_peer = *p;
    if (auto st = validate_service_name(cfg.pipe_service); !st) {
      return exit_code = 2, make_error("invalid pipe service \"{}\": {}", cfg.pipe_service, st.error().message);
    }
  }

  if (dht_cmd->parsed()) {
    cfg.command = Command::Dht;
    auto parsed = parse_dht_operation(dht_op, dht_args, cfg);
    if (!parsed) return exit_code = 2, parsed.error();
  }
  if (auto st = finish_service_command(svc, cfg); !st) return exit_code = 2, st.error();

  if (dht_mdns_flag->count() > 0) cfg.mdns = mdns;
  else if (auto st = resolve_switch(mdns_flag, mdns, "PUNCHGATE_MDNS", cfg.mdns); !st) return exit_code = 2, st.error();
  if (auto st = resolve_switch(holepunch_flag, holepunch, "PUNCHGATE_HOLEPUNCH", cfg.holepunch); !st) {
    return exit_code = 2, st.error();
  }
  if (auto st = resolve_switch(hard_nat_flag, hard_nat, "PUNCHGATE_HARD_NAT", cfg.hard_nat); !st) {
    return exit_code = 2, st.error();
  }
  if (auto st = resolve_switch(port_mapping_flag, port_mapping, "PUNCHGATE_PORT_MAPPING", cfg.port_mapping); !st) {
    return exit_code = 2, st.error();
  }
  if (auto st = parse_port_mapping_lease(port_mapping_lease, cfg.port_mapping_lease_s); !st) {
    return exit_code = 2, st.error();
  }

  for (const auto& e : flag_or_env(expose, "PUNCHGATE_EXPOSE")) {
    auto spec = parse_expose(e);
    if (!spec) return exit_code = 2, spec.error();
    cfg.exposes.push_back(*spec);
  }
  if (auto st = validate_exposes(cfg.exposes); !st) return exit_code = 2, st.error();
  for (const auto& t : flag_or_env(tunnel, "PUNCHGATE_TUNNEL")) {
    auto spec = parse_tunnel(t);
    if (!spec) return exit_code = 2, spec.error();
    cfg.tunnels.push_back(*spec);
  }
  for (const auto& t : flag_or_env(tunnel_by_name, "PUNCHGATE_TUNNEL_BY_NAME")) {
    auto spec = parse_tunnel_by_name(t);
    if (!spec) return exit_code = 2, spec.error();
    cfg.tunnels.push_back(*spec);
  }
  if (auto st = validate_tunnels(cfg.tunnels); !st) return exit_code = 2, st.error();
  for (const auto& a : flag_or_env(allow, "PUNCHGATE_ALLOW")) {
    auto p = PeerId::parse(a);
    if (!p) return exit_code = 2, make_error("invalid --allow peer id \"{}\": {}", a, p.error().message);
    cfg.allow.push_back(*p);
  }

  if (identity.empty()) {
    const char* env = std::getenv("PUNCHGATE_IDENTITY");
    identity = env && *env ? env : "";
  }
  cfg.identity_path = identity.empty() ? service_paths().identity_file : std::filesystem::path(identity);

  auto listens = flag_or_env(listen, "PUNCHGATE_LISTEN");
  if (listens.empty() && (cfg.command == Command::Run || cfg.command == Command::Up)) {
    listens.push_back(kDefaultListen);
  }
  for (const auto& l : listens) {
    auto m = parse_listen_addr(l);
    if (!m) return exit_code = 2, m.error();
    cfg.listen.push_back(*m);
  }
  for (const auto& b : flag_or_env(bootstrap, "PUNCHGATE_BOOTSTRAP")) {
    auto m = parse_peer_addr(b, "--bootstrap");
    if (!m) return exit_code = 2, m.error();
    cfg.bootstrap.push_back(*m);
  }

  if (auto st = finish_relay_options(relay_text, cfg.relay, cfg.command == Command::Up ? &cfg.service_env : nullptr);
      !st) {
    return exit_code = 2, st.error();
  }

  if (control_socket.empty()) {
    const char* env = std::getenv("PUNCHGATE_CONTROL_SOCKET");
    control_socket = env && *env ? env : "";
  }
  if (control_socket == "off") {
    cfg.control_socket.clear();
  } else {
    cfg.control_socket = control_socket.empty() ? service_paths().control_socket
                                                : std::filesystem::absolute(control_socket);
  }

  if (cfg.command == Command::Up) {
    // What the service runs with: the effective values (flags, else the caller's environment),
    // paths made absolute since the service does not share our working directory.
    auto put_list = [&](const char* key, const std::vector<std::string>& items) {
      if (!items.empty()) cfg.service_env.emplace_back(key, join_env_list(items));
    };
    cfg.service_env.emplace_back("PUNCHGATE_IDENTITY", std::filesystem::absolute(cfg.identity_path).string());
    put_list("PUNCHGATE_LISTEN", listens);
    put_list("PUNCHGATE_BOOTSTRAP", flag_or_env(bootstrap, "PUNCHGATE_BOOTSTRAP"));
    put_list("PUNCHGATE_EXPOSE", flag_or_env(expose, "PUNCHGATE_EXPOSE"));
    put_list("PUNCHGATE_TUNNEL", flag_or_env(tunnel, "PUNCHGATE_TUNNEL"));
    put_list("PUNCHGATE_TUNNEL_BY_NAME", flag_or_env(tunnel_by_name, "PUNCHGATE_TUNNEL_BY_NAME"));
    put_list("PUNCHGATE_ALLOW", flag_or_env(allow, "PUNCHGATE_ALLOW"));
    cfg.service_env.emplace_back("PUNCHGATE_MDNS", cfg.mdns ? "true" : "false");
    cfg.service_env.emplace_back("PUNCHGATE_HOLEPUNCH", cfg.holepunch ? "true" : "false");
    cfg.service_env.emplace_back("PUNCHGATE_HARD_NAT", cfg.hard_nat ? "true" : "false");
    cfg.service_env.emplace_back("PUNCHGATE_PORT_MAPPING", cfg.port_mapping ? "true" : "false");
    if (!port_mapping_lease.empty()) cfg.service_env.emplace_back("PUNCHGATE_PORT_MAPPING_LEASE", port_mapping_lease);
    if (!control_socket.empty()) {
      cfg.service_env.emplace_back("PUNCHGATE_CONTROL_SOCKET",
                                   control_socket == "off" ? "off" : cfg.control_socket.string());
    }
    if (const char* level = std::getenv("PUNCHGATE_LOG"); level && *level) {
      cfg.service_env.emplace_back("PUNCHGATE_LOG", level);
    }
  }
  return cfg;
}

}  // namespace punchgate
