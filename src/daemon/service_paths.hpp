// Where the service-mode files live for the current user (XDG layout on Linux and macOS alike).
#pragma once

#include <filesystem>

namespace punchgate {

struct ServicePaths {
  std::filesystem::path config_dir;      // $XDG_CONFIG_HOME/punchgate or ~/.config/punchgate
  std::filesystem::path env_file;        // config_dir/punchgate.env
  std::filesystem::path data_dir;        // $XDG_DATA_HOME/punchgate or ~/.local/share/punchgate
  std::filesystem::path identity_file;   // data_dir/identity.key
  std::filesystem::path state_dir;       // $XDG_STATE_HOME/punchgate or ~/.local/state/punchgate
  std::filesystem::path pid_file;        // state_dir/supervisor.pid (fallback supervisor)
  std::filesystem::path log_file;        // state_dir/punchgate.log (fallback supervisor)
  std::filesystem::path control_socket;  // $XDG_RUNTIME_DIR/punchgate/control.sock, else state_dir/control.sock
  std::filesystem::path systemd_unit;    // $XDG_CONFIG_HOME/systemd/user/punchgate.service
  std::filesystem::path launchd_plist;   // ~/Library/LaunchAgents/com.punchgate.daemon.plist
};

// Computed from HOME and the XDG_* variables (relative XDG values are ignored, as the spec says).
ServicePaths service_paths();

inline constexpr char kSystemdUnitName[] = "punchgate.service";
inline constexpr char kLaunchdLabel[] = "com.punchgate.daemon";

}  // namespace punchgate
