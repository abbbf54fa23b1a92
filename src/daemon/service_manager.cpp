#include "daemon/service_manager.hpp"

#include "daemon/atomic_file.hpp"
#include "daemon/process.hpp"
#include "daemon/service_units.hpp"
#include "daemon/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace punchgate {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto kSystemctlTimeout = 30s;
constexpr auto kDetectTimeout = 5s;
constexpr auto kSupervisorStartTimeout = 10s;
constexpr auto kSupervisorRestartTimeout = 20s;  // the old daemon may take its 10 s to stop
constexpr auto kSupervisorStopTimeout = 15s;
constexpr auto kPoll = 50ms;

std::string launchd_domain() { return fmt::format("gui/{}", ::getuid()); }
std::string launchd_target() { return fmt::format("{}/{}", launchd_domain(), kLaunchdLabel); }

// Polls `done` until it holds or `timeout` passes.
template <typename F>
bool wait_until(F done, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPoll);
  }
}

// The last lines of the log, for errors about a supervisor that did not come up.
std::string log_tail_for_error(const fs::path& log) {
  auto text = read_file_bounded(log, 64 << 20);
  if (!text || text->empty()) return "";
  std::string_view t = *text;
  while (!t.empty() && t.back() == '\n') t.remove_suffix(1);
  size_t pos = t.size();
  for (int i = 0; i < 5 && pos != std::string_view::npos && pos > 0; ++i) pos = t.rfind('\n', pos - 1);
  return std::string(pos == std::string_view::npos ? t : t.substr(pos + 1));
}

// ---- systemd ----

Status systemd_up(const ServicePaths& paths, const fs::path& binary) {
  PG_TRY(write_file_atomic(paths.systemd_unit, render_systemd_user_unit({binary, paths}), {0644, 0755, false}));
  PG_TRY(run_checked({"systemctl", "--user", "daemon-reload"}, kSystemctlTimeout));
  PG_TRY(run_checked({"systemctl", "--user", "enable", kSystemdUnitName}, kSystemctlTimeout));
  // restart = start when stopped; a running daemon picks up the rewritten env file.
  return run_checked({"systemctl", "--user", "restart", kSystemdUnitName}, kSystemctlTimeout);
}

Status systemd_down(const ServicePaths& paths) {
  std::error_code ec;
  if (!fs::exists(paths.systemd_unit, ec)) return {};
  auto r = run_command({"systemctl", "--user", "disable", "--now", kSystemdUnitName}, kSystemctlTimeout);
  if (!r) return r.error();
  // Without a reachable user manager nothing can be running from the unit; the file still goes.
  const bool unreachable = !r->succeeded() && r->output.find("Failed to connect to bus") != std::string::npos;
  if (!r->succeeded() && !unreachable) {
    return make_error("`systemctl --user disable --now {}` failed: {}", kSystemdUnitName, r->describe());
  }
  if (::unlink(paths.systemd_unit.c_str()) != 0 && errno != ENOENT) {
    return make_error("cannot remove {}: {}", paths.systemd_unit.string(), errno_text(errno));
  }
  if (!unreachable) (void)run_command({"systemctl", "--user", "daemon-reload"}, kSystemctlTimeout);
  return {};
}

// ---- launchd ----

Status launchd_up(const ServicePaths& paths, const fs::path& binary) {
  PG_TRY(make_dirs(paths.state_dir, 0700));  // launchd opens the log there but creates no dirs
  PG_TRY(write_file_atomic(paths.launchd_plist, render_launchd_plist({binary, paths}), {0644, 0755, false}));
  // A loaded agent keeps its old definition: unload (fails harmlessly when not loaded), load.
  (void)run_command({"launchctl", "bootout", launchd_target()}, kSystemctlTimeout);
  (void)run_command({"launchctl", "enable", launchd_target()}, kSystemctlTimeout);
  // bootout returns before the old instance is fully gone; bootstrap then fails for a moment.
  Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    last = run_checked({"launchctl", "bootstrap", launchd_domain(), paths.launchd_plist.string()}, kSystemctlTimeout);
    if (last) return {};
    std::this_thread::sleep_for(500ms);
  }
  return last;
}

Status launchd_down(const ServicePaths& paths) {
  std::error_code ec;
  if (!fs::exists(paths.launchd_plist, ec)) return {};
  (void)run_command({"launchctl", "bootout", launchd_target()}, kSystemctlTimeout);
  if (::unlink(paths.launchd_plist.c_str()) != 0 && errno != ENOENT) {
    return make_error("cannot remove {}: {}", paths.launchd_plist.string(), errno_text(errno));
  }
  return {};
}

// ---- fallback supervisor ----

// The pid file of a running supervisor; it writes it right after taking the lock.
std::optional<SupervisorPids> running_pids(const ServicePaths& paths) {
  std::optional<SupervisorPids> pids;
  wait_until([&] { return (pids = read_pid_file(paths.pid_file)).has_value() || !supervisor_running(paths); }, 2s);
  return pids;
}

// SIGTERM, then SIGKILL after `grace`; returns once `pid` is gone.
void terminate_process(pid_t pid, Clock::duration grace) {
  if (!process_alive(pid)) return;
  ::kill(pid, SIGTERM);
  if (wait_until([&] { return !process_alive(pid); }, grace)) return;
  ::kill(pid, SIGKILL);
  wait_until([&] { return !process_alive(pid); }, 5s);
}

Status supervisor_up(const ServicePaths& paths, const fs::path& binary) {
  PG_TRY(make_dirs(paths.state_dir, 0700));
  if (supervisor_running(paths)) {
    auto pids = running_pids(paths);
    if (!pids) return make_error("a supervisor holds {} but wrote no pid file", supervisor_lock_path(paths).string());
    const pid_t old_daemon = pids->daemon;
    if (::kill(pids->supervisor, SIGHUP) != 0) {
      return make_error("cannot signal the supervisor (pid {}): {}", pids->supervisor, errno_text(errno));
    }
    // Done when a different daemon runs (the old one is gone by then: the supervisor waits).
    bool restarted = wait_until(
        [&] {
          auto now = read_pid_file(paths.pid_file);
          return !supervisor_running(paths) || (now && now->daemon != 0 && now->daemon != old_daemon);
        },
        kSupervisorRestartTimeout);
    if (!supervisor_running(paths)) {
      return make_error("the supervisor exited while restarting the daemon; see {}", paths.log_file.string());
    }
    if (!restarted) {
      return make_error("the daemon was not restarted within {} s; see {}",
                        std::chrono::seconds(kSupervisorRestartTimeout).count(), paths.log_file.string());
    }
    return {};
  }

  // A daemon left by a supervisor that was killed outright would hold the ports of the new one.
  if (auto stale = read_pid_file(paths.pid_file);
      stale && stale->daemon != 0 && looks_like_our_daemon(process_cmdline(stale->daemon), paths.env_file)) {
    terminate_process(stale->daemon, 10s);
  }
  auto pid = spawn_detached({binary.string(), "supervise"}, paths.log_file);
  if (!pid) return pid.error();
  bool started = wait_until(
      [&] {
        auto pids = read_pid_file(paths.pid_file);
        if (pids && pids->supervisor == *pid && pids->daemon != 0 && supervisor_running(paths)) return true;
        return !process_alive(*pid);
      },
      kSupervisorStartTimeout);
  auto pids = read_pid_file(paths.pid_file);
  if (started && pids && pids->supervisor == *pid && pids->daemon != 0) return {};
  std::string tail = log_tail_for_error(paths.log_file);
  return make_error("the supervisor (pid {}) {}; see {}{}{}", *pid,
                    started ? "exited" : "did not start the daemon within 10 s", paths.log_file.string(),
                    tail.empty() ? "" : ", which ends with:\n", tail);
}

Status supervisor_down(const ServicePaths& paths) {
  std::optional<SupervisorPids> pids = read_pid_file(paths.pid_file);
  if (supervisor_running(paths)) {
    if (!pids) pids = running_pids(paths);
    if (!pids) return make_error("a supervisor holds {} but wrote no pid file", supervisor_lock_path(paths).string());
    const pid_t sup = pids->supervisor;
    // It stops the daemon (SIGTERM, SIGKILL after 10 s), removes the pid file and exits.
    ::kill(sup, SIGTERM);
    if (!wait_until([&] { return !supervisor_running(paths); }, kSupervisorStopTimeout)) {
      if (auto now = read_pid_file(paths.pid_file)) pids = now;
      ::kill(sup, SIGKILL);
      // It leads its own process group (setsid at start): that reaches a daemon it left.
      if (::getpgid(sup) == sup) ::kill(-sup, SIGKILL);
      if (!wait_until([&] { return !supervisor_running(paths); }, 5s)) {
        return make_error("the supervisor (pid {}) does not exit, even after SIGKILL", sup);
      }
    }
  }
  // A daemon whose supervisor was killed outright (PR_SET_PDEATHSIG normally takes it along).
  if (pids && pids->daemon != 0 && looks_like_our_daemon(process_cmdline(pids->daemon), paths.env_file)) {
    terminate_process(pids->daemon, 10s);
  }
  if (::unlink(paths.pid_file.c_str()) != 0 && errno != ENOENT) {
    return make_error("cannot remove {}: {}", paths.pid_file.string(), errno_text(errno));
  }
  return {};
}

// ---- logs ----

std::atomic<bool> g_stop_follow{false};

extern "C" void on_follow_signal(int) { g_stop_follow = true; }

bool write_out(std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(1, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Offset where the last `lines` lines of the file start (a final unterminated line counts).
off_t tail_start(int fd, off_t size, size_t lines) {
  constexpr off_t kChunk = 64 << 10;
  std::string buf;
  off_t pos = size;
  size_t seen = 0;
  bool first = true;
  while (pos > 0) {
    off_t len = std::min(kChunk, pos);
    pos -= len;
    buf.resize(static_cast<size_t>(len));
    ssize_t n = ::pread(fd, buf.data(), buf.size(), pos);
    if (n != len) return 0;
    for (off_t i = len - 1; i >= 0; --i) {
      if (buf[static_cast<size_t>(i)] != '\n') continue;
      if (first && pos + i == size - 1) continue;  // the newline ending the last line
      if (++seen == lines) return pos + i + 1;
    }
    first = false;
  }
  return 0;
}

// Copies fd from `offset` to its end onto stdout; returns the new offset.
off_t copy_from(int fd, off_t offset) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return offset;
    if (!write_out(std::string_view(buf, static_cast<size_t>(n)))) {
      g_stop_follow = true;  // stdout is gone (a closed pipe): nothing more to do
      return offset;
    }
    offset += n;
  }
}

int print_log_file(const fs::path& path, bool follow, size_t lines) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    if (errno == ENOENT) {
      std::fprintf(stderr, "no log yet at %s\n", path.c_str());
    } else {
      std::fprintf(stderr, "punchgate: cannot open %s: %s\n", path.c_str(), errno_text(errno).c_str());
    }
    return 1;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return 1;
  off_t offset = copy_from(fd.get(), tail_start(fd.get(), st.st_size, lines));
  if (!follow) return 0;

  g_stop_follow = false;
  struct sigaction sa {};
  sa.sa_handler = on_follow_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  while (!g_stop_follow) {
    std::this_thread::sleep_for(200ms);
    if (::fstat(fd.get(), &st) == 0 && st.st_size < offset) offset = 0;  // truncated
    offset = copy_from(fd.get(), offset);
    // Rotated (renamed away, a new file in its place): finish the old one, then follow the new.
    struct stat now {};
    if (::stat(path.c_str(), &now) == 0 && (now.st_ino != st.st_ino || now.st_dev != st.st_dev)) {
      UniqueFd next(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
      if (next) {
        offset = copy_from(fd.get(), offset);
        fd = std::move(next);
        offset = 0;
      }
    }
  }
  return 0;
}

}  // namespace

std::string_view to_string(ServiceManagerKind k) {
  switch (k) {
    case ServiceManagerKind::Systemd: return "systemd";
    case ServiceManagerKind::Launchd: return "launchd";
    case ServiceManagerKind::Supervisor: return "supervisor";
  }
  return "unknown";
}

Result<ServiceManagerChoice> detect_service_manager() {
  if (const char* forced = std::getenv("PUNCHGATE_SERVICE_MANAGER"); forced && *forced) {
    for (auto k : {ServiceManagerKind::Systemd, ServiceManagerKind::Launchd, ServiceManagerKind::Supervisor}) {
      if (to_string(k) == forced) return ServiceManagerChoice{k, ""};
    }
    return make_error("invalid PUNCHGATE_SERVICE_MANAGER \"{}\": expected systemd, launchd or supervisor", forced);
  }
#ifdef __APPLE__
  return ServiceManagerChoice{ServiceManagerKind::Launchd, ""};
#else
  auto r = run_command({"systemctl", "--user", "show-environment"}, kDetectTimeout);
  if (r && r->succeeded()) return ServiceManagerChoice{ServiceManagerKind::Systemd, ""};
  return ServiceManagerChoice{ServiceManagerKind::Supervisor,
                              fmt::format("no systemd user manager (systemctl --user: {})",
                                          r ? r->describe() : r.error().message)};
#endif
}

Status service_up(const ServicePaths& paths, const fs::path& binary, const ServiceManagerChoice& how) {
  switch (how.kind) {
    case ServiceManagerKind::Systemd: return systemd_up(paths, binary);
    case ServiceManagerKind::Launchd: return launchd_up(paths, binary);
    case ServiceManagerKind::Supervisor: return supervisor_up(paths, binary);
  }
  return make_error("unknown service manager");
}

Status service_down(const ServicePaths& paths) {
  // Whatever is there, whichever manager `up` used last (the choice may have changed since).
  PG_TRY(systemd_down(paths));
  PG_TRY(launchd_down(paths));
  return supervisor_down(paths);
}

int service_logs(const ServicePaths& paths, bool follow, size_t lines) {
#ifndef __APPLE__
  std::error_code ec;
  if (fs::exists(paths.systemd_unit, ec)) {
    std::vector<std::string> argv = {"journalctl", "--user", "-u", kSystemdUnitName, "-n", std::to_string(lines)};
    argv.emplace_back(follow ? "-f" : "--no-pager");
    auto cargv = c_string_array(argv);
    std::fflush(stdout);
    ::execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "punchgate: cannot run journalctl: %s\n", errno_text(errno).c_str());
    return 1;
  }
#endif
  return print_log_file(paths.log_file, follow, lines);
}

}  // namespace punchgate
