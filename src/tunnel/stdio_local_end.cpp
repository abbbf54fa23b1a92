#include "tunnel/stdio_local_end.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

namespace punchgate {

namespace {

std::mutex g_threads_mutex;
std::vector<std::thread> g_threads;

// Copies `from` to `to` with blocking I/O until EOF or an error, then closes `to` if owned.
void copy_fd(int from, int to, bool close_to) {
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;
      off += w;
    }
  }
  if (close_to) ::close(to);
}

// libuv cannot poll regular files, so a file on stdin/stdout is relayed through a socket pair by
// a thread doing blocking I/O; the loop sees the other end as an ordinary stream.
Result<int> file_relay(int fd, bool readable) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return make_error("socketpair: {}", strerror(errno));
  }
  std::lock_guard lock(g_threads_mutex);
  if (readable) {
    g_threads.emplace_back(copy_fd, fd, sv[1], true);  // file -> socket; EOF closes the socket
  } else {
    g_threads.emplace_back([fd, s = sv[1]] {
      copy_fd(s, fd, false);  // socket -> file until the loop side closes
      ::close(s);
    });
  }
  return sv[0];
}

}  // namespace

void join_stdio_threads() {
  std::lock_guard lock(g_threads_mutex);
  for (auto& t : g_threads) {
    if (t.joinable()) t.join();
  }
  g_threads.clear();
}

Status StdioLocalEnd::open_fd(uv_loop_t* loop, int fd, bool readable, Handle& out) {
  const char* which = fd == 0 ? "stdin" : fd == 1 ? "stdout" : "descriptor";
  switch (uv_guess_handle(fd)) {
    case UV_NAMED_PIPE: {
      UvHandle<uv_pipe_t> h;
      uv_pipe_init(loop, h.get(), 0);
      h.mark_initialised();
      if (int rv = uv_pipe_open(h.get(), fd); rv != 0) return make_error("cannot use {}: {}", which, uv_strerror(rv));
      out = std::move(h);
      return {};
    }
    case UV_TTY: {
      UvHandle<uv_tty_t> h;
      if (int rv = uv_tty_init(loop, h.get(), fd, readable ? 1 : 0); rv != 0) {
        return make_error("cannot use {}: {}", which, uv_strerror(rv));
      }
      h.mark_initialised();
      out = std::move(h);
      return {};
    }
    case UV_TCP: {
      UvHandle<uv_tcp_t> h;
      uv_tcp_init(loop, h.get());
      h.mark_initialised();
      if (int rv = uv_tcp_open(h.get(), fd); rv != 0) return make_error("cannot use {}: {}", which, uv_strerror(rv));
      out = std::move(h);
      return {};
    }
    case UV_FILE: {
      auto relay = file_relay(fd, readable);
      if (!relay) return make_error("cannot use {}: {}", which, relay.error().message);
      UvHandle<uv_pipe_t> h;
      uv_pipe_init(loop, h.get(), 0);
      h.mark_initialised();
      if (int rv = uv_pipe_open(h.get(), *relay); rv != 0) {
        return make_error("cannot use {}: {}", which, uv_strerror(rv));
      }
      out = std::move(h);
      return {};
    }
    default:
      return make_error("{} must be a pipe, socket, terminal or file", which);
  }
}

Result<std::unique_ptr<StdioLocalEnd>> StdioLocalEnd::open(uv_loop_t* loop, int in_fd, int out_fd) {
  auto end = std::make_unique<StdioLocalEnd>();
  PG_TRY(open_fd(loop, in_fd, true, end->in_));
  PG_TRY(open_fd(loop, out_fd, false, end->out_));
  return end;
}

uv_stream_t* StdioLocalEnd::stream_of(Handle& h) {
  return std::visit(
      [](auto& x) -> uv_stream_t* {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::monostate>) {
          return nullptr;
        } else {
          return reinterpret_cast<uv_stream_t*>(x.get());
        }
      },
      h);
}

uv_stream_t* StdioLocalEnd::reader() { return stream_of(in_); }
uv_stream_t* StdioLocalEnd::writer() { return stream_of(out_); }

void StdioLocalEnd::close() {
  in_ = std::monostate{};
  out_ = std::monostate{};
}

}  // namespace punchgate
