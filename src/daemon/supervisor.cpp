// `punchgate supervise`: keeps one daemon (`<binary> --env-file <env file>`) running where no
// service manager is available, with systemd's Restart=on-failure semantics.
#include "daemon/supervisor.hpp"

#include "daemon/atomic_file.hpp"
#include "daemon/process.hpp"
#include "daemon/service_manager.hpp"
#include "punchgate/core/log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>

extern char** environ;  // NOLINT: POSIX

namespace punchgate {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- pure pieces -------------------------------------------------------------------------

milliseconds RestartBackoff::next(milliseconds ran_for) {
  if (ran_for >= kHealthyRun) current_ = kMin;
  milliseconds delay = current_;
  current_ = std::min(current_ * 2, kMax);
  return delay;
}

std::string render_pid_file(const SupervisorPids& pids) {
  return fmt::format("{}\n{}\n", pids.supervisor, pids.daemon);
}

std::optional<SupervisorPids> parse_pid_file(std::string_view text) {
  auto number = [&](pid_t& out) {
    size_t end = text.find('\n');
    if (end == std::string_view::npos) return false;
    std::string_view word = text.substr(0, end);
    text.remove_prefix(end + 1);
    auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), out);
    return ec == std::errc() && p == word.data() + word.size() && out >= 0;
  };
  SupervisorPids pids;
  if (!number(pids.supervisor) || pids.supervisor == 0) return std::nullopt;
  if (!number(pids.daemon)) return std::nullopt;
  return pids;
}

std::optional<SupervisorPids> read_pid_file(const fs::path& path) {
  auto text = read_file_bounded(path, 256);
  if (!text) return std::nullopt;
  return parse_pid_file(*text);
}

fs::path supervisor_lock_path(const ServicePaths& paths) { return paths.state_dir / "supervisor.lock"; }

bool supervisor_running(const ServicePaths& paths) {
  UniqueFd fd(::open(supervisor_lock_path(paths).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return false;  // never started here
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd.get(), LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK;
}

std::vector<std::string> daemon_environment(char** env) {
  std::vector<std::string> out;
  for (char** e = env; e && *e; ++e) {
    std::string_view kv = *e;
    if (kv.starts_with("PUNCHGATE_") && !kv.starts_with("PUNCHGATE_LOG=")) continue;
    out.emplace_back(kv);
  }
  return out;
}

bool looks_like_our_daemon(const std::vector<std::string>& cmdline, const fs::path& env_file) {
  for (size_t i = 1; i + 1 < cmdline.size(); ++i) {
    if (cmdline[i] == "--env-file" && cmdline[i + 1] == env_file.native()) return true;
  }
  return false;
}

// ---- the supervisor process ----------------------------------------------------------------

namespace {

int g_signal_pipe = -1;

extern "C" void on_signal(int sig) {
  int saved = errno;
  auto byte = static_cast<unsigned char>(sig);
  (void)!::write(g_signal_pipe, &byte, 1);
  errno = saved;
}

class Supervisor {
 public:
  Supervisor(const ServicePaths& paths, const fs::path& binary) : paths_(paths), binary_(binary) {}

  int run() {
    if (auto st = make_dirs(paths_.state_dir, 0700); !st) {
      spdlog::error("supervisor cannot start error={}", log_quote(st.error().message));
      return 1;
    }
    lock_.reset(::open(supervisor_lock_path(paths_).c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
    if (!lock_) {
      spdlog::error("supervisor cannot open lock={} error={}", log_quote(supervisor_lock_path(paths_).string()),
                    log_quote(errno_text(errno)));
      return 1;
    }
    if (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
      auto other = read_pid_file(paths_.pid_file);
      spdlog::error("another supervisor is running pid={}", other ? other->supervisor : 0);
      return 1;
    }
    if (!install_signals()) return 1;
    write_pids();
    spdlog::info("supervisor started pid={} binary={} env_file={}", ::getpid(), log_quote(binary_.string()),
                 log_quote(paths_.env_file.string()));
    start_daemon();
    loop();
    ::unlink(paths_.pid_file.c_str());
    spdlog::info("supervisor stopped pid={}", ::getpid());
    return exit_code_;
  }

 private:
  bool install_signals() {
    int fds[2];
    if (::pipe(fds) != 0) {
      spdlog::error("supervisor pipe failed error={}", log_quote(errno_text(errno)));
      return false;
    }
    for (int fd : fds) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    signal_rd_.reset(fds[0]);
    signal_wr_.reset(fds[1]);
    g_signal_pipe = signal_wr_.get();
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }

  void write_pids() {
    auto st = write_file_atomic(paths_.pid_file, render_pid_file({::getpid(), child_}), AtomicWriteOptions{0644, 0700, false});
    if (!st) spdlog::warn("supervisor cannot write pid file error={}", log_quote(st.error().message));
  }

  // At a (re)start, a log grown past the limit moves to <log>.1 and our stdout/stderr (which the
  // daemon inherits) continue in a fresh file. Only when stdout really is that log file.
  void maybe_rotate_log() {
    struct stat out {}, file {};
    if (::fstat(1, &out) != 0 || ::stat(paths_.log_file.c_str(), &file) != 0) return;
    if (!S_ISREG(out.st_mode) || out.st_dev != file.st_dev || out.st_ino != file.st_ino) return;
    if (file.st_size <= kMaxLogSize) return;
    const fs::path old = paths_.log_file.native() + ".1";
    if (::rename(paths_.log_file.c_str(), old.c_str()) != 0) return;
    UniqueFd fresh(::open(paths_.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
    if (!fresh) return;
    ::dup2(fresh.get(), 1);
    ::dup2(fresh.get(), 2);
    spdlog::info("log rotated previous={}", log_quote(old.string()));
  }

  void start_daemon() {
    next_start_.reset();
    maybe_rotate_log();
    std::vector<std::string> argv = {binary_.string(), "--env-file", paths_.env_file.string()};
    std::vector<std::string> env = daemon_environment(environ);
    auto cargv = c_string_array(argv);
    auto cenv = c_string_array(env);
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      schedule_restart(milliseconds(0), fmt::format("fork failed: {}", errno_text(errno)));
      return;
    }
    if (pid == 0) {
      for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
#ifdef __linux__
      // Should the supervisor be killed outright, the daemon goes too instead of lingering.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
#else
      (void)parent;
#endif
      ::execve(cargv[0], cargv.data(), cenv.data());
      const char msg[] = "supervisor: cannot execute the punchgate binary\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(127);
    }
    child_ = pid;
    child_started_ = Clock::now();
    write_pids();
    spdlog::info("daemon started pid={}", pid);
  }

  void schedule_restart(milliseconds ran_for, const std::string& why) {
    milliseconds delay = backoff_.next(ran_for);
    next_start_ = Clock::now() + delay;
    spdlog::warn("daemon exited status={} ran_ms={} restarting in_ms={}", log_quote(why), ran_for.count(),
                 delay.count());
  }

  void stop_child(const char* why) {
    if (!child_ || kill_deadline_) return;
    spdlog::info("stopping daemon pid={} reason={}", child_, why);
    ::kill(child_, SIGTERM);
    kill_deadline_ = Clock::now() + std::chrono::seconds(10);
  }

  void on_child_exit(int status) {
    const auto ran_for = std::chrono::duration_cast<milliseconds>(Clock::now() - child_started_);
    const pid_t pid = child_;
    child_ = 0;
    kill_deadline_.reset();
    write_pids();
    if (stopping_) {
      spdlog::info("daemon stopped pid={} status={}", pid, log_quote(describe_wait_status(status)));
      return;
    }
    if (reload_) {
      reload_ = false;
      spdlog::info("daemon stopped for restart pid={} status={}", pid, log_quote(describe_wait_status(status)));
      backoff_.reset();
      start_daemon();
      return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      // Restart=on-failure: a clean exit is a decision of the daemon, not a crash.
      spdlog::info("daemon exited status=0 pid={} ran_ms={} supervisor stops too", pid, ran_for.count());
      stopping_ = true;
      return;
    }
    schedule_restart(ran_for, describe_wait_status(status));
  }

  void handle_signal(int sig) {
    if (sig == SIGTERM || sig == SIGINT) {
      if (!stopping_) spdlog::info("supervisor stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      stopping_ = true;
      next_start_.reset();
      stop_child("supervisor stopping");
    } else if (sig == SIGHUP && !stopping_) {
      spdlog::info("restart requested (SIGHUP): daemon restarts with the env file as it is now");
      if (child_) {
        reload_ = true;
        stop_child("restart requested");
      } else {
        backoff_.reset();
        start_daemon();
      }
    }
  }

  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      if (pid == child_) on_child_exit(status);
    }
  }

  int poll_timeout_ms() const {
    auto until = Clock::time_point::max();
    if (next_start_) until = std::min(until, *next_start_);
    if (kill_deadline_) until = std::min(until, *kill_deadline_);
    if (until == Clock::time_point::max()) return 60'000;
    auto ms = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count() + 1;
    return static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
  }

  void loop() {
    for (;;) {
      if (stopping_ && !child_) return;
      pollfd p{signal_rd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, poll_timeout_ms());
      if (r < 0 && errno != EINTR) {
        spdlog::error("supervisor poll failed error={}", log_quote(errno_text(errno)));
        stopping_ = true;
        stop_child("supervisor failing");
      }
      unsigned char sigs[64];
      ssize_t n;
      while ((n = ::read(signal_rd_.get(), sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
          if (sigs[i] != SIGCHLD) handle_signal(sigs[i]);
        }
      }
      reap();
      const auto now = Clock::now();
      if (kill_deadline_ && now >= *kill_deadline_ && child_) {
        spdlog::warn("daemon did not stop within 10 s, killing pid={}", child_);
        ::kill(child_, SIGKILL);
        kill_deadline_ = Clock::time_point::max();  // wait for the kernel; no second kill
      }
      if (next_start_ && now >= *next_start_ && !stopping_) start_daemon();
    }
  }

  const ServicePaths& paths_;
  fs::path binary_;
  UniqueFd lock_;
  UniqueFd signal_rd_;
  UniqueFd signal_wr_;
  pid_t child_ = 0;
  Clock::time_point child_started_{};
  std::optional<Clock::time_point> next_start_;
  std::optional<Clock::time_point> kill_deadline_;
  RestartBackoff backoff_;
  bool stopping_ = false;
  bool reload_ = false;
  int exit_code_ = 0;
};

}  // namespace

int run_supervisor(const ServicePaths& paths, const fs::path& binary) { return Supervisor(paths, binary).run(); }

}  // namespace punchgate
