#include "daemon/process.hpp"

#include "daemon/atomic_file.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

extern char** environ;  // NOLINT: POSIX

namespace punchgate {

namespace {

using Clock = std::chrono::steady_clock;

Status make_pipe(int fds[2]) {
  if (::pipe(fds) != 0) return make_error("pipe: {}", errno_text(errno));
  for (int i = 0; i < 2; ++i) ::fcntl(fds[i], F_SETFD, FD_CLOEXEC);
  return {};
}

std::string join_words(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out.push_back(' ');
    out += a;
  }
  return out;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    default: return nullptr;
  }
}

// Waits for `pid` until `deadline`, then kills it; returns its status.
int reap_by(pid_t pid, Clock::time_point deadline, bool& timed_out) {
  timed_out = false;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;
    if (Clock::now() >= deadline && !timed_out) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      deadline = Clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

bool CommandOutput::succeeded() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string CommandOutput::describe() const {
  std::string text = output;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  constexpr size_t kMaxShown = 600;
  if (text.size() > kMaxShown) text = "…" + text.substr(text.size() - kMaxShown);
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  std::string out = describe_wait_status(status);
  if (!text.empty()) out += ": " + text;
  return out;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = signal_name(sig);
    std::string s = name ? fmt::format("signal {}", name) : fmt::format("signal {}", sig);
#ifdef WCOREDUMP
    if (WCOREDUMP(status)) s += " (core dumped)";
#endif
    return s;
  }
  return fmt::format("wait status {:#x}", status);
}

std::vector<char*> c_string_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

Result<CommandOutput> run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  if (argv.empty()) return make_error("empty command");
  int fds[2];
  PG_TRY(make_pipe(fds));
  UniqueFd rd(fds[0]);
  UniqueFd wr(fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, wr.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> words = argv;
  auto cargv = c_string_array(words);
  pid_t pid = -1;
  int err = ::posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return make_error("cannot run {}: {}", argv[0], errno_text(err));
  wr.reset();

  const auto deadline = Clock::now() + timeout;
  CommandOutput out;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{rd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the command (and whatever it started) closed its output
    size_t room = kMaxCommandOutput - std::min(kMaxCommandOutput, out.output.size());
    out.output.append(buf, std::min(room, static_cast<size_t>(n)));
  }
  bool killed = false;
  out.status = reap_by(pid, timed_out ? Clock::now() : deadline, killed);
  if (timed_out || killed) {
    return make_error("`{}` did not finish within {} ms", join_words(argv), timeout.count());
  }
  return out;
}

Status run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  auto r = run_command(argv, timeout);
  if (!r) return r.error();
  if (!r->succeeded()) return make_error("`{}` failed: {}", join_words(argv), r->describe());
  return {};
}

Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log_file) {
  if (argv.empty()) return make_error("empty command");
  // Everything the children need is prepared here: between fork and exec only
  // async-signal-safe calls.
  UniqueFd log(::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
  if (!log) return make_error("cannot open log file {}: {}", log_file.string(), errno_text(errno));
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return make_error("cannot open /dev/null: {}", errno_text(errno));
  int fds[2];
  PG_TRY(make_pipe(fds));
  UniqueFd rd(fds[0]);
  UniqueFd wr(fds[1]);
  std::vector<std::string> words = argv;
  auto cargv = c_string_array(words);

  pid_t first = ::fork();
  if (first < 0) return make_error("fork: {}", errno_text(errno));
  if (first == 0) {
    ::setsid();
    pid_t second = ::fork();
    if (second != 0) ::_exit(second < 0 ? 1 : 0);
    // The grandchild: no controlling terminal, not a session leader, so it never gets one.
    pid_t self = ::getpid();
    (void)!::write(wr.get(), &self, sizeof self);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGCHLD}) ::signal(sig, SIG_DFL);
    ::dup2(devnull.get(), 0);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    // Descriptors someone opened without O_CLOEXEC must not leak into a long-lived process.
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != wr.get()) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (::chdir("/") != 0) ::_exit(126);
    ::execv(cargv[0], cargv.data());
    int e = errno;
    (void)!::write(wr.get(), &e, sizeof e);
    ::_exit(127);
  }
  wr.reset();
  int status = 0;
  while (::waitpid(first, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return make_error("cannot fork the background process");

  // The grandchild's pid, then (only if exec failed) its errno; EOF once it has exec'd.
  char buf[sizeof(pid_t) + sizeof(int)];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::read(rd.get(), buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof(pid_t)) return make_error("the background process died before it started");
  pid_t pid;
  std::memcpy(&pid, buf, sizeof pid);
  if (got == sizeof buf) {
    int e;
    std::memcpy(&e, buf + sizeof(pid_t), sizeof e);
    return make_error("cannot run {}: {}", argv[0], errno_text(e));
  }
  return pid;
}

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
#ifdef __linux__
  // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ')'.
  auto stat = read_file_bounded(fmt::format("/proc/{}/stat", pid), 4096);
  if (!stat) return true;
  size_t close = stat->rfind(')');
  if (close != std::string::npos && close + 2 < stat->size()) {
    char state = (*stat)[close + 2];
    if (state == 'Z' || state == 'X') return false;
  }
#endif
  return true;
}

std::vector<std::string> process_cmdline(pid_t pid) {
  std::vector<std::string> words;
#ifdef __linux__
  auto text = read_file_bounded(fmt::format("/proc/{}/cmdline", pid), 1 << 20);
  if (!text) return words;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\0', pos);
    if (end == std::string::npos) end = text->size();
    words.emplace_back(text->substr(pos, end - pos));
    pos = end + 1;
  }
#else
  (void)pid;
#endif
  return words;
}

}  // namespace punchgate
