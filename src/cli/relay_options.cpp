#include "cli/relay_options.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <limits>

namespace punchgate {

namespace {

// The numeric caps: flag, env twin, where the text lands, its range, how it sets the limit.
struct NumberOption {
  const char* flag;
  const char* env;
  std::string RelayOptionText::*text;
  const char* type;
  const char* help;
  uint64_t min;
  uint64_t max;
  void (*apply)(RelayLimits&, uint64_t);
};

constexpr uint64_t kMaxCount = 1'000'000;

const NumberOption kNumbers[] = {
    {"--relay-max-reservations", "PUNCHGATE_RELAY_MAX_RESERVATIONS", &RelayOptionText::max_reservations, "N",
     "reservations this relay holds at once (default 128)", 0, kMaxCount,
     [](RelayLimits& l, uint64_t v) { l.max_reservations = v; }},
    {"--relay-max-circuits", "PUNCHGATE_RELAY_MAX_CIRCUITS", &RelayOptionText::max_circuits, "N",
     "circuits open through this relay at once (default 64)", 0, kMaxCount,
     [](RelayLimits& l, uint64_t v) { l.max_circuits = v; }},
    {"--relay-max-circuits-per-peer", "PUNCHGATE_RELAY_MAX_CIRCUITS_PER_PEER", &RelayOptionText::max_circuits_per_peer,
     "N", "circuits per peer at once (default 8)", 0, kMaxCount,
     [](RelayLimits& l, uint64_t v) { l.max_circuits_per_peer = v; }},
    {"--relay-circuit-duration", "PUNCHGATE_RELAY_CIRCUIT_DURATION", &RelayOptionText::circuit_duration, "SECONDS",
     "seconds a circuit may last, 0 = no limit (default 3600)", 0, std::numeric_limits<uint32_t>::max(),
     [](RelayLimits& l, uint64_t v) { l.circuit_duration_s = static_cast<uint32_t>(v); }},
    {"--relay-circuit-bytes", "PUNCHGATE_RELAY_CIRCUIT_BYTES", &RelayOptionText::circuit_bytes, "BYTES",
     "bytes a circuit may carry each way, 0 = no limit (default 1 GiB)", 0,
     static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
     [](RelayLimits& l, uint64_t v) { l.circuit_data_bytes = v; }},
    // At least 10 s: clients renew at three quarters of it, and a shorter one only churns.
    {"--relay-reservation-ttl", "PUNCHGATE_RELAY_RESERVATION_TTL", &RelayOptionText::reservation_ttl, "SECONDS",
     "how long a reservation lasts before the client must renew it (default 3600)", 10, 7 * 24 * 3600,
     [](RelayLimits& l, uint64_t v) { l.reservation_ttl_s = static_cast<uint32_t>(v); }},
};

// The flag's value, else the environment variable's; empty when neither is set.
std::string flag_or_env(const std::string& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v ? std::string(v) : std::string();
}

Result<uint64_t> parse_number(const std::string& text, const NumberOption& o) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return make_error("invalid {} \"{}\": expected a whole number", o.flag, text);
  }
  if (v < o.min || v > o.max) {
    return make_error("invalid {} \"{}\": must be between {} and {}", o.flag, text, o.min, o.max);
  }
  return v;
}

}  // namespace

void add_relay_options(CLI::App& app, RelayOptionText& t) {
  app.add_option("--relay-mode", t.mode,
                 "auto (reserve on relays when AutoNAT finds it private or behind a NAT; until it knows: with --bootstrap), off, or a relay MULTIADDR to use only (env PUNCHGATE_RELAY_MODE)")
      ->type_name("MODE");
  app.add_option("--relay-server", t.server,
                 "relay for others: on, off, or auto = when AutoNAT finds it public on its own address (until it knows: without --bootstrap) (env PUNCHGATE_RELAY_SERVER)")
      ->type_name("MODE");
  for (const NumberOption& o : kNumbers) {
    app.add_option(o.flag, t.*o.text, fmt::format("{} (env {})", o.help, o.env))->type_name(o.type);
  }
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
  for (const NumberOption& o : kNumbers) {
    std::string text = flag_or_env(t.*o.text, o.env);
    if (text.empty()) continue;
    auto v = parse_number(text, o);
    if (!v) return v.error();
    remember(o.env, text);
    o.apply(cfg.limits, *v);
  }
  return {};
}

}  // namespace punchgate
