// The fallback supervisor's pieces that service_up/service_down share with it, and its pure
// policies (restart backoff, child environment), kept apart so they can be unit-tested.
//
// Files in the state dir:
//   supervisor.lock  flock()ed by the running supervisor for its whole life: the authoritative
//                    "is one running" test (released by the kernel when it dies, even by
//                    SIGKILL, and unaffected by pid reuse or unreaped zombies).
//   supervisor.pid   "<supervisor pid>\n<daemon pid or 0>\n", rewritten atomically whenever the
//                    daemon (re)starts or exits, removed when the supervisor stops.
#pragma once

#include "daemon/service_paths.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace punchgate {

// Restart delay after a failure: 1 s doubling to 30 s; a run of 60 s or more counts as healthy
// and starts the sequence over.
class RestartBackoff {
 public:
  static constexpr std::chrono::milliseconds kMin{1000};
  static constexpr std::chrono::milliseconds kMax{30000};
  static constexpr std::chrono::milliseconds kHealthyRun{60000};

  std::chrono::milliseconds next(std::chrono::milliseconds ran_for);
  void reset() { current_ = kMin; }

 private:
  std::chrono::milliseconds current_ = kMin;
};

struct SupervisorPids {
  pid_t supervisor = 0;
  pid_t daemon = 0;  // 0 while no daemon runs (between restarts)
};

std::string render_pid_file(const SupervisorPids& pids);
std::optional<SupervisorPids> parse_pid_file(std::string_view text);
std::optional<SupervisorPids> read_pid_file(const std::filesystem::path& path);

std::filesystem::path supervisor_lock_path(const ServicePaths& paths);
// True while some process holds the supervisor lock.
bool supervisor_running(const ServicePaths& paths);

// The daemon's environment: ours without PUNCHGATE_* variables (the env file alone configures
// it, as under systemd), except PUNCHGATE_LOG.
std::vector<std::string> daemon_environment(char** env);

// Whether `cmdline` is a daemon this supervisor would have started for `env_file`.
bool looks_like_our_daemon(const std::vector<std::string>& cmdline, const std::filesystem::path& env_file);

// The log is rotated (renamed to <log>.1) when it is larger than this at a daemon (re)start.
inline constexpr off_t kMaxLogSize = 10 << 20;

}  // namespace punchgate
