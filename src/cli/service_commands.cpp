// Service mode: up, down, logs, and the internal supervise / service-unit commands.
#include "cli/commands.hpp"

#include "daemon/env_file.hpp"
#include "daemon/service_manager.hpp"
#include "daemon/service_paths.hpp"
#include "daemon/service_units.hpp"
#include "punchgate/crypto/identity.hpp"

#include <cstdio>
#include <filesystem>
#include <system_error>

namespace punchgate {

namespace {

// The running executable, so the service starts this same binary.
std::filesystem::path self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("punchgate") : p;
}

std::string env_value(const EnvVars& vars, const std::string& key) {
  for (const auto& [k, v] : vars) {
    if (k == key) return v;
  }
  return {};
}

}  // namespace

int run_up(const Config& cfg) {
  const ServicePaths paths = service_paths();
  // Created now so `up` can name the peer id, and so the service finds it at a stable path.
  auto id = Identity::load_or_create(env_value(cfg.service_env, "PUNCHGATE_IDENTITY"));
  if (!id) {
    std::fprintf(stderr, "punchgate: %s\n", id.error().message.c_str());
    return 1;
  }
  if (auto st = write_env_file(paths.env_file, cfg.service_env); !st) {
    std::fprintf(stderr, "punchgate: cannot write %s: %s\n", paths.env_file.c_str(), st.error().message.c_str());
    return 1;
  }
  auto detected = detect_service_manager();
  if (!detected) {
    std::fprintf(stderr, "punchgate: %s\n", detected.error().message.c_str());
    return 2;
  }
  const ServiceManagerChoice& how = *detected;
  if (how.kind == ServiceManagerKind::Supervisor && !how.why.empty()) {
    std::printf("no service manager reachable (%s): running punchgate as a supervised background process\n",
                how.why.c_str());
  }
  if (auto st = service_up(paths, self_executable(), how); !st) {
    std::fprintf(stderr, "punchgate: up failed: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("punchgate is up via %s\npeer id: %s\nconfig:  %s\n", std::string(to_string(how.kind)).c_str(),
              id->peer_id().to_base58().c_str(), paths.env_file.c_str());
  return wait_until_answering(cfg, 15'000);
}

int run_down(const Config&) {
  if (auto st = service_down(service_paths()); !st) {
    std::fprintf(stderr, "punchgate: down failed: %s\n", st.error().message.c_str());
    return 1;
  }
  return 0;
}

int run_logs(const Config& cfg) { return service_logs(service_paths(), cfg.follow, cfg.log_lines); }

int run_supervise(const Config&) { return run_supervisor(service_paths(), self_executable()); }

int run_service_unit(const Config& cfg) {
  ServiceUnitParams params{self_executable(), service_paths()};
  std::string text = cfg.unit_kind == "launchd" ? render_launchd_plist(params) : render_systemd_user_unit(params);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace punchgate
