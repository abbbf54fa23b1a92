#include "punchgate/core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <string>

namespace punchgate {

namespace {

// RUST_LOG may look like "info" or "punchgate=debug,libp2p=info": take the first bare or
// punchgate-scoped level.
std::string level_from_rust_log(std::string_view spec) {
  std::string fallback;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string_view::npos) end = spec.size();
    std::string_view item = spec.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      if (fallback.empty()) fallback = std::string(item);
    } else if (item.substr(0, eq) == "punchgate") {
      return std::string(item.substr(eq + 1));
    }
    pos = end + 1;
  }
  return fallback;
}

}  // namespace

std::string log_quote(std::string_view text) {
  constexpr size_t kMaxShown = 512;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    auto u = static_cast<uint8_t>(text[i]);
    if (u < 0x20 || u >= 0x7f || u == '"' || u == '\\') {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(text[i]);
    }
  }
  out.push_back('"');
  if (text.size() > kMaxShown) out += fmt::format("...({} bytes)", text.size());
  return out;
}

void init_logging() {
  auto logger = spdlog::stderr_color_mt("punchgate");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::trace);

  std::string spec;
  if (const char* v = std::getenv("PUNCHGATE_LOG"); v && *v) {
    spec = v;
  } else if (const char* r = std::getenv("RUST_LOG"); r && *r) {
    spec = level_from_rust_log(r);
  }
  if (spec.empty()) {
    spdlog::set_level(spdlog::level::info);
    return;
  }
  auto level = spdlog::level::from_str(spec);
  if (level == spdlog::level::off && spec != "off") {
    spdlog::set_level(spdlog::level::info);
    spdlog::warn("unknown log level value={} using=info", spec);
    return;
  }
  spdlog::set_level(level);
}

}  // namespace punchgate
