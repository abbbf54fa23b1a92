// Child processes for service mode: short external commands with captured output (systemctl,
// launchctl), a detached background process, and questions about processes we did not start.
#pragma once

#include "punchgate/core/result.hpp"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace punchgate {

struct CommandOutput {
  int status = 0;      // raw waitpid status
  std::string output;  // stdout and stderr interleaved, at most kMaxCommandOutput bytes
  bool succeeded() const;
  std::string describe() const;  // "exit status 1: Failed to connect to bus: …" (first lines)
};

inline constexpr size_t kMaxCommandOutput = 64 << 10;

// Runs argv[0] (looked up in PATH) with stdin from /dev/null; killed when `timeout` passes. An
// error only when it could not be started or timed out; a non-zero exit is in the result.
Result<CommandOutput> run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);
// run_command, and an error naming the command and its output unless it exited 0.
Status run_checked(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// "exit status N" / "signal SIGKILL" / "signal 9 (core dumped)"-style text of a waitpid status.
std::string describe_wait_status(int status);

// Starts argv detached from us (double fork, new session, stdin /dev/null, stdout and stderr
// appended to `log_file`, cwd /) with the current environment. Returns its pid once it has
// exec'd; an exec failure is reported as an error.
Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log_file);

// Exists and is not a zombie (a zombie's pid may linger when no one reaps it, e.g. in a
// container whose init does not).
bool process_alive(pid_t pid);
// The NUL-separated command line of `pid` split into words; empty where unknown (no /proc).
std::vector<std::string> process_cmdline(pid_t pid);

// Builds a NULL-terminated char* array over `strings` (which must outlive it), for exec*.
std::vector<char*> c_string_array(std::vector<std::string>& strings);

}  // namespace punchgate
