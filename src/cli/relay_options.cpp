#include "cli/relay_options.hpp"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdlib>
#include <limits>

namespace punchgate {

namespace {

struct NumberOption {
  const char* flag;
  const char* env;
  const std::string RelayOptionText::*text;
  uint64_t min;
  uint64_t max;
};

// The flag's value, else the environment variable's; empty when neither is set.
std::string flag_or_env(const std::string& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v ? std::string(v) : std::string();
}

Result<uint64_t> parse_number(const std::string& text, const char* flag, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return make_error("invalid {} \"{}\": expected a whole number", flag, text);
  }
  if (v < min || v > max) return make_error("invalid {} \"{}\": must be between {} and {}", flag, text, min, max);
  return v;
}

}  // namespace

void add_relay_options(CLI::App& app, RelayOptionText& t) {
  app.add_option("--relay-mode", t.mode,
                 "auto (reserve on relays when private), off, or a relay MULTIADDR to use only (env PUNCHGATE_RELAY_MODE)")
      ->type_name("MODE");
  app.add_option("--relay-server", t.server,
                 "relay for others: on, off, or auto = when public, i.e. without --bootstrap (env PUNCHGATE_RELAY_SERVER)")
      ->type_name("MODE");
  app.add_option("--relay-max-reservations", t.max_reservations,
                 "reservations this relay holds at once (default 128; env PUNCHGATE_RELAY_MAX_RESERVATIONS)")
      ->type_name("N");
  app.add_option("--relay-max-circuits", t.max_circuits,
                 "circuits open through this relay at once (default 64; env PUNCHGATE_RELAY_MAX_CIRCUITS)")
      ->type_name("N");
  app.add_option("--relay-max-circuits-per-peer", t.max_circuits_per_peer,
                 "circuits per peer at once (default 8; env PUNCHGATE_RELAY_MAX_CIRCUITS_PER_PEER)")
      ->type_name("N");
  app.add_option("--relay-circuit-duration", t.circuit_duration,
                 "seconds a circuit may last, 0 = no limit (default 3600; env PUNCHGATE_RELAY_CIRCUIT_DURATION)")
      ->type_name("SECONDS");
  app.add_option("--relay-circuit-bytes", t.circuit_bytes,
                 "bytes a circuit may carry each way, 0 = no limit (default 1 GiB; env PUNCHGATE_RELAY_CIRCUIT_BYTES)")
      ->type_name("BYTES");
}

Status finish_relay_options(const RelayOptionText& t, RelayConfig& cfg, EnvVars* service_env) {
  auto remember = [&](const char* env, const std::string& value) {
    if (service_env && !value.empty()) service_env->emplace_back(env, value);
  };
  std::string mode = flag_or_env(t.mode, "PUNCHGATE_RELAY_MODE");
  if (!mode.empty()) {
    if (Status s = parse_relay_mode(mode, cfg); !s) return s;
  }
  remember("PUNCHGATE_RELAY_MODE", mode);
  std::string server = flag_or_env(t.server, "PUNCHGATE_RELAY_SERVER");
  if (!server.empty()) {
    if (Status s = parse_relay_server(server, cfg); !s) return s;
  }
  remember("PUNCHGATE_RELAY_SERVER", server);

  constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
  const NumberOption numbers[] = {
      {"--relay-max-reservations", "PUNCHGATE_RELAY_MAX_RESERVATIONS", &RelayOptionText::max_reservations, 0, 1'000'000},
      {"--relay-max-circuits", "PUNCHGATE_RELAY_MAX_CIRCUITS", &RelayOptionText::max_circuits, 0, 1'000'000},
      {"--relay-max-circuits-per-peer", "PUNCHGATE_RELAY_MAX_CIRCUITS_PER_PEER", &RelayOptionText::max_circuits_per_peer,
       0, 1'000'000},
      {"--relay-circuit-duration", "PUNCHGATE_RELAY_CIRCUIT_DURATION", &RelayOptionText::circuit_duration, 0, kU32},
      {"--relay-circuit-bytes", "PUNCHGATE_RELAY_CIRCUIT_BYTES", &RelayOptionText::circuit_bytes, 0,
       std::numeric_limits<int64_t>::max()},
  };
  for (const NumberOption& o : numbers) {
    std::string text = flag_or_env(t.*o.text, o.env);
    if (text.empty()) continue;
    auto v = parse_number(text, o.flag, o.min, o.max);
    if (!v) return v.error();
    remember(o.env, text);
    RelayLimits& l = cfg.limits;
    if (o.text == &RelayOptionText::max_reservations) l.max_reservations = *v;
    if (o.text == &RelayOptionText::max_circuits) l.max_circuits = *v;
    if (o.text == &RelayOptionText::max_circuits_per_peer) l.max_circuits_per_peer = *v;
    if (o.text == &RelayOptionText::circuit_duration) l.circuit_duration_s = static_cast<uint32_t>(*v);
    if (o.text == &RelayOptionText::circuit_bytes) l.circuit_data_bytes = *v;
  }
  return {};
}

}  // namespace punchgate
