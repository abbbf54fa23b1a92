#include "daemon/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace punchgate {

namespace fs = std::filesystem;


Status make_dirs(const fs::path& dir, mode_t mode) {
  if (dir.empty()) return {};
  fs::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), mode) == 0) {
      ::chmod(partial.c_str(), mode);  // mkdir's mode went through the umask
      continue;
    }
    int err = errno;
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    if (err == EEXIST) return make_error("{} exists but is not a directory", partial.string());
    return make_error("cannot create directory {}: {}", partial.string(), errno_text(err));
  }
  return {};
}

Result<std::string> read_file_bounded(const fs::path& path, size_t max_size, bool* missing) {
  if (missing) *missing = false;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    int err = errno;
    if (err == ENOENT && missing) *missing = true;
    return make_error("cannot open {}: {}", path.string(), errno_text(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return make_error("cannot stat {}: {}", path.string(), errno_text(errno));
  if (!S_ISREG(st.st_mode)) return make_error("{} is not a regular file", path.string());
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("cannot read {}: {}", path.string(), errno_text(errno));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size) {
      return make_error("{} is larger than the {} byte limit", path.string(), max_size);
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

namespace {

Status write_all(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("{}", errno_text(errno));
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

struct TempFileGuard {
  fs::path path;
  bool armed = true;
  ~TempFileGuard() {
    if (armed) ::unlink(path.c_str());
  }
};

// A temp name no concurrent writer (another `punchgate up`) picks: pid + counter + clock.
fs::path temp_name_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
  return path.parent_path() / fmt::format(".{}.tmp-{}-{}-{:x}", path.filename().string(), ::getpid(),
                                          counter.fetch_add(1), static_cast<unsigned long long>(ticks) & 0xffffff);
}

Status write_new_file(const fs::path& path, std::string_view content, const AtomicWriteOptions& opt) {
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  PG_TRY(make_dirs(path.parent_path(), opt.dir_mode));
  const fs::path tmp = temp_name_for(path);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, opt.mode));
  if (!fd) return make_error("cannot create {}: {}", tmp.string(), errno_text(errno));
  TempFileGuard guard{tmp};
  if (::fchmod(fd.get(), opt.mode) != 0) return make_error("cannot chmod {}: {}", tmp.string(), errno_text(errno));
  if (auto w = write_all(fd.get(), content); !w) {
    return make_error("cannot write {}: {}", tmp.string(), w.error().message);
  }
  if (::fsync(fd.get()) != 0) return make_error("cannot fsync {}: {}", tmp.string(), errno_text(errno));
  if (::close(fd.release()) != 0) return make_error("cannot close {}: {}", tmp.string(), errno_text(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return make_error("cannot rename {} to {}: {}", tmp.string(), path.string(), errno_text(errno));
  }
  guard.armed = false;
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd || ::fsync(dfd.get()) != 0) {
    return make_error("{} written, but fsync of {} failed: {}", path.string(), dir.string(), errno_text(errno));
  }
  return {};
}

}  // namespace

Status write_file_atomic(const fs::path& path, std::string_view content, const AtomicWriteOptions& opt) {
  if (opt.keep_backup) {
    // Copied (not renamed away) so `path` exists at every moment; a file too large to be ours is
    // not worth keeping.
    constexpr size_t kMaxBackup = 16 << 20;
    bool missing = false;
    auto old = read_file_bounded(path, kMaxBackup, &missing);
    if (old) {
      AtomicWriteOptions bak = opt;
      bak.keep_backup = false;
      PG_TRY(write_new_file(fs::path(path.native() + ".bak"), *old, bak));
    } else if (!missing) {
      return old.error();
    }
  }
  return write_new_file(path, content, opt);
}

}  // namespace punchgate
