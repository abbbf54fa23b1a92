// Installs, starts, stops and removes the per-user service: systemd --user on Linux, launchd on
// macOS, and where neither is reachable (a container, no user bus) a detached supervisor process.
#pragma once

#include "daemon/service_paths.hpp"
#include "punchgate/core/result.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace punchgate {

enum class ServiceManagerKind { Systemd, Launchd, Supervisor };
std::string_view to_string(ServiceManagerKind k);

struct ServiceManagerChoice {
  ServiceManagerKind kind;
  // Why the supervisor was chosen when auto-detection fell back to it, e.g. "no systemd user
  // manager (systemctl --user: exit status 1: Failed to connect to bus: No medium found)";
  // empty when the platform's manager was found or the choice was forced.
  std::string why;
};

// PUNCHGATE_SERVICE_MANAGER=systemd|launchd|supervisor forces a choice (tests use supervisor);
// any other non-empty value is an error naming it (a typo must not silently pick another
// manager). Otherwise: launchd on macOS; on Linux systemd when `systemctl --user
// show-environment` answers within 5 s, else the supervisor.
Result<ServiceManagerChoice> detect_service_manager();

// The env file is already written. Installs the unit (or starts the supervisor) and starts it;
// when already running, restarts it so the new configuration applies. Supervisor: returns once
// the (new) daemon process has been started.
Status service_up(const ServicePaths& paths, const std::filesystem::path& binary, const ServiceManagerChoice& how);
// Stops, disables and removes whatever `up` installed (systemd unit, launchd agent, supervisor
// and its daemon), returning only when no daemon process is left; quiet success when nothing
// runs.
Status service_down(const ServicePaths& paths);
// Prints the daemon's log: journalctl when the systemd unit is installed, the log file
// otherwise (last `lines` lines; follow = like tail -F until SIGINT/SIGTERM, then exit 0).
// A missing log file prints "no log yet at <path>" and returns 1.
int service_logs(const ServicePaths& paths, bool follow, size_t lines);

// `punchgate supervise` (started detached by service_up): runs `<binary> --env-file <env file>`
// with inherited PUNCHGATE_* variables (but PUNCHGATE_LOG) removed, restarts it with backoff
// (1 s doubling to 30 s, reset after a 60 s run) when it fails; a clean exit (status 0) stops
// the supervisor too, like Restart=on-failure. SIGHUP restarts the daemon at once; SIGTERM or
// SIGINT stop it (SIGKILL after 10 s) and then the supervisor. Returns the process exit code
// (1 when another supervisor already runs). See supervisor.hpp for its files.
int run_supervisor(const ServicePaths& paths, const std::filesystem::path& binary);

}  // namespace punchgate
