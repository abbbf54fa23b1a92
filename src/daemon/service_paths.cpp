#include "daemon/service_paths.hpp"

#include <cstdlib>

namespace punchgate {

namespace {

std::filesystem::path home_dir() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::filesystem::path(home) : std::filesystem::path(".");
}

// An XDG base directory: the variable when it holds an absolute path, else HOME/fallback.
std::filesystem::path xdg_dir(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  if (v && *v == '/') return v;
  return home_dir() / fallback;
}

}  // namespace

ServicePaths service_paths() {
  ServicePaths p;
  const auto config_home = xdg_dir("XDG_CONFIG_HOME", ".config");
  p.config_dir = config_home / "punchgate";
  p.env_file = p.config_dir / "punchgate.env";
  p.data_dir = xdg_dir("XDG_DATA_HOME", ".local/share") / "punchgate";
  p.identity_file = p.data_dir / "identity.key";
  p.state_dir = xdg_dir("XDG_STATE_HOME", ".local/state") / "punchgate";
  p.pid_file = p.state_dir / "supervisor.pid";
  p.log_file = p.state_dir / "punchgate.log";
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  p.control_socket = (runtime && *runtime == '/') ? std::filesystem::path(runtime) / "punchgate" / "control.sock"
                                                  : p.state_dir / "control.sock";
  p.systemd_unit = config_home / "systemd" / "user" / kSystemdUnitName;
  p.launchd_plist = home_dir() / "Library" / "LaunchAgents" / (std::string(kLaunchdLabel) + ".plist");
  return p;
}

}  // namespace punchgate
