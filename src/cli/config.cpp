#include "cli/config.hpp"

#include "punchgate/kad/kad_message.hpp"

#include "punchgate/host/protocol_ids.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <map>

namespace punchgate {

namespace {

constexpr char kDefaultListen[] = "/ip4/0.0.0.0/udp/0/quic-v1";

// "a,b , c" -> {"a","b","c"}; empty items dropped.
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(pos, end - pos);
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    pos = end + 1;
  }
  return out;
}

// Values from a repeatable flag, or from the environment variable when the flag is absent.
std::vector<std::string> flag_or_env(const std::vector<std::string>& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v ? split_list(v) : std::vector<std::string>{};
}

}  // namespace

std::filesystem::path default_identity_path() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg == '/') {
    return std::filesystem::path(xdg) / "punchgate" / "identity.key";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : ".") / ".local" / "share" / "punchgate" / "identity.key";
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

Result<Config> parse_command_line(int argc, char** argv, int& exit_code) {
  exit_code = 0;
  Config cfg;
  CLI::App app{"punchgate: reach TCP and UDP services on any machine, through NATs, peer to peer", "punchgate"};
  app.set_version_flag("--version", agent_version());
  std::string identity;
  std::vector<std::string> listen, bootstrap;
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
  // CLI11 fills a std::optional flag even when it is absent, so the flag's count tells whether
  // the command line chose; otherwise PUNCHGATE_MDNS decides, and the default is on.
  bool mdns = true;
  auto* mdns_flag =
      app.add_flag("--mdns,!--no-mdns", mdns, "find peers on the local network with mDNS (default on; env PUNCHGATE_MDNS)");
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
  app.require_subcommand(0, 1);
  // Global options may also follow the subcommand (punchgate pipe <B> ssh --bootstrap …).
  for (auto* sub : {id_cmd, ping_cmd, pipe_cmd, dht_cmd}) sub->fallthrough();

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

  if (mdns_flag->count() > 0 || dht_mdns_flag->count() > 0) {
    cfg.mdns = mdns;
  } else if (const char* env = std::getenv("PUNCHGATE_MDNS"); env && *env) {
    std::string v = env;
    if (v == "1" || v == "true" || v == "on" || v == "yes") {
      cfg.mdns = true;
    } else if (v == "0" || v == "false" || v == "off" || v == "no") {
      cfg.mdns = false;
    } else {
      return exit_code = 2, make_error("invalid PUNCHGATE_MDNS \"{}\": expected true or false", v);
    }
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
  cfg.identity_path = identity.empty() ? default_identity_path() : std::filesystem::path(identity);

  auto listens = flag_or_env(listen, "PUNCHGATE_LISTEN");
  if (listens.empty() && cfg.command == Command::Run) listens.push_back(kDefaultListen);
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
  return cfg;
}

}  // namespace punchgate
