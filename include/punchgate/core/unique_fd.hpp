// Owns a POSIX file descriptor (for the few places that use plain POSIX I/O instead of libuv:
// key files, service-mode files, the blocking control client, child processes).
#pragma once

#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

namespace punchgate {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  // Closes and reports close()'s result (it can carry a deferred write error).
  int close_checked() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_ = -1;
};

inline std::string errno_text(int err) { return std::strerror(err); }

}  // namespace punchgate
