#include "daemon/control_client.hpp"

#include "punchgate/core/unique_fd.hpp"

#include "daemon/control_protocol.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

namespace punchgate {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;  // a daemon that hung up must not kill the CLI with SIGPIPE
#else
constexpr int kSendFlags = 0;  // macOS: SO_NOSIGPIPE is set on the socket instead
#endif

ControlCallError failed(std::string message) { return {ControlCallError::Failed, std::move(message)}; }

std::string duration_text(milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000) : fmt::format("{} ms", d.count());
}


ControlResult<UniqueFd> connect_socket(const std::filesystem::path& path, milliseconds timeout) {
  sockaddr_un addr{};
  if (path.native().size() >= sizeof(addr.sun_path)) {
    return failed(fmt::format("control socket path {} is too long ({} bytes, limit {})", path.string(),
                              path.native().size(), sizeof(addr.sun_path) - 1));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  if (fd.get() < 0) return failed(fmt::format("cannot create a socket: {}", std::strerror(errno)));
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
  // Bounds a connect to a daemon whose backlog is full, and sends to one that stopped reading.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  int rv;
  do {
    rv = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (rv != 0 && errno == EINTR);
  if (rv == 0) return fd;
  int err = errno;
  if (err == ENOENT || err == ECONNREFUSED) {
    return ControlCallError{ControlCallError::NotRunning,
                            fmt::format("punchgate is not running (no control socket at {})", path.string())};
  }
  if (err == EAGAIN || err == EWOULDBLOCK) {
    return failed(fmt::format("timed out after {} connecting to control socket {}", duration_text(timeout),
                              path.string()));
  }
  return failed(fmt::format("cannot connect to control socket {}: {}", path.string(), std::strerror(err)));
}

ControlResult<void> send_all(int fd, std::string_view data, milliseconds timeout) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), kSendFlags);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return failed(fmt::format("timed out after {} sending to punchgate", duration_text(timeout)));
      }
      if (errno == EPIPE || errno == ECONNRESET) return failed("punchgate closed the control connection");
      return failed(fmt::format("cannot send to punchgate: {}", std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

enum class ReadEnd { Line, Eof, Timeout };

// The next line from `fd` into `line`, waiting until `deadline` (none: forever).
ControlResult<ReadEnd> read_line(int fd, ControlLineReader& reader, std::optional<Clock::time_point> deadline,
                                 std::string& line) {
  std::array<char, 65536> buf;
  while (true) {
    if (auto l = reader.next()) {
      line = std::move(*l);
      return ReadEnd::Line;
    }
    if (reader.too_large()) {
      return failed(fmt::format("reply from punchgate too large (limit {} bytes)", reader.max_line()));
    }
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::ceil<milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return ReadEnd::Timeout;
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 1'000'000));
    }
    pollfd p{fd, POLLIN, 0};
    int rv = ::poll(&p, 1, wait_ms);
    if (rv < 0) {
      if (errno == EINTR) continue;
      return failed(fmt::format("cannot wait for punchgate: {}", std::strerror(errno)));
    }
    if (rv == 0) continue;  // the deadline check above decides
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return ReadEnd::Eof;
      return failed(fmt::format("cannot read from punchgate: {}", std::strerror(errno)));
    }
    if (n == 0) return ReadEnd::Eof;
    reader.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
}

std::string excerpt(std::string_view text) {
  constexpr size_t kMax = 200;
  return text.size() <= kMax ? std::string(text) : std::string(text.substr(0, kMax)) + "…";
}

// Connects, sends one request and reads its answer; the connection stays open for events.
struct Exchange {
  UniqueFd fd;
  ControlLineReader reader{kMaxControlResponseBytes};
  json response;
};

ControlResult<Exchange> exchange(const std::filesystem::path& socket, std::string_view method, const json& params,
                                 milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string request =
      fmt::format("{{\"id\":1,\"method\":{},\"params\":{}}}\n", control_dump(json(std::string(method))),
                  control_dump(params.is_null() ? json::object() : params));
  if (request.size() - 1 > kMaxControlRequestBytes) {
    return failed(fmt::format("request too large ({} bytes, limit {})", request.size() - 1, kMaxControlRequestBytes));
  }
  auto fd = connect_socket(socket, timeout);
  if (!fd) return fd.error();
  Exchange ex{std::move(*fd), ControlLineReader{kMaxControlResponseBytes}, json()};
  if (auto sent = send_all(ex.fd.get(), request, timeout); !sent) return sent.error();
  std::string line;
  auto end = read_line(ex.fd.get(), ex.reader, deadline, line);
  if (!end) return end.error();
  if (*end == ReadEnd::Timeout) {
    return failed(fmt::format("punchgate did not answer \"{}\" within {}", method, duration_text(timeout)));
  }
  if (*end == ReadEnd::Eof) {
    return failed(fmt::format("punchgate closed the control connection without answering \"{}\"", method));
  }
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
    return failed(fmt::format("unexpected reply from punchgate: {}", excerpt(line)));
  }
  ex.response = std::move(j);
  return ex;
}

std::string error_text(const json& response) {
  auto it = response.find("error");
  if (it == response.end()) return "punchgate reported an error without a message";
  return it->is_string() ? it->get<std::string>() : control_dump(*it);
}

}  // namespace

ControlResult<json> control_request(const std::filesystem::path& socket, std::string_view method, const json& params,
                                    milliseconds timeout) {
  auto ex = exchange(socket, method, params, timeout);
  if (!ex) return ex.error();
  return std::move(ex->response);
}

ControlResult<json> control_call(const std::filesystem::path& socket, std::string_view method, const json& params,
                                 milliseconds timeout) {
  auto r = control_request(socket, method, params, timeout);
  if (!r) return r.error();
  if (!(*r)["ok"].get<bool>()) return failed(error_text(*r));
  auto it = r->find("result");
  return it == r->end() ? json::object() : std::move(*it);
}

ControlResult<void> control_subscribe(const std::filesystem::path& socket, const ControlEventFn& on_event,
                                      milliseconds idle_timeout, milliseconds timeout) {
  auto ex = exchange(socket, "subscribe", json::object(), timeout);
  if (!ex) return ex.error();
  if (!ex->response["ok"].get<bool>()) return failed(error_text(ex->response));
  while (true) {
    std::optional<Clock::time_point> deadline;
    if (idle_timeout.count() > 0) deadline = Clock::now() + idle_timeout;
    std::string line;
    auto end = read_line(ex->fd.get(), ex->reader, deadline, line);
    if (!end) return end.error();
    if (*end == ReadEnd::Timeout) {
      return failed(fmt::format("no event from punchgate within {}", duration_text(idle_timeout)));
    }
    if (*end == ReadEnd::Eof) return failed("punchgate closed the control connection");
    json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object()) return failed(fmt::format("unexpected event from punchgate: {}", excerpt(line)));
    if (!on_event(event)) return {};
  }
}

}  // namespace punchgate
