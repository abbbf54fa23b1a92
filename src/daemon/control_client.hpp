// Blocking client of the control socket for one-shot CLI commands (`punchgate status`, `tunnel
// add`, …): plain POSIX sockets, no event loop. Wire format: daemon/control_protocol.hpp.
#pragma once

#include <nlohmann/json.hpp>

#include <cassert>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace punchgate {

struct ControlCallError {
  // NotRunning: nothing listens at the socket path (no file, or a stale one nobody answers on);
  // a CLI exits with "not running" status. Failed: everything else (timeout, permission denied,
  // connection lost, malformed reply, or the daemon answered ok:false).
  enum Kind { NotRunning, Failed } kind;
  std::string message;  // one line, ready to print
};

// Result<T> with a ControlCallError instead of an Error, so callers can tell the kinds apart.
template <typename T>
class [[nodiscard]] ControlResult {
 public:
  ControlResult(T value) : v_(std::in_place_index<0>, std::move(value)) {}              // NOLINT
  ControlResult(ControlCallError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const ControlCallError& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, ControlCallError> v_;
};

template <>
class [[nodiscard]] ControlResult<void> {
 public:
  ControlResult() = default;
  ControlResult(ControlCallError error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const ControlCallError& error() const { assert(!ok_); return error_; }

 private:
  ControlCallError error_{ControlCallError::Failed, {}};
  bool ok_ = true;
};

inline constexpr std::chrono::milliseconds kControlCallTimeout{10'000};

// Sends {"id":1,"method":…,"params":…} and returns the whole response object
// ({"id":1,"ok":true,"result":…} or {"id":1,"ok":false,"error":"…"}) — an ok:false answer is
// still a successful exchange here. `timeout` bounds connecting, sending and waiting for the
// answer; running out is Failed naming it.
ControlResult<nlohmann::json> control_request(const std::filesystem::path& socket, std::string_view method,
                                              const nlohmann::json& params = nlohmann::json::object(),
                                              std::chrono::milliseconds timeout = kControlCallTimeout);

// control_request() unwrapped: the "result" object of an ok answer; an ok:false answer becomes
// Failed carrying the daemon's error message.
ControlResult<nlohmann::json> control_call(const std::filesystem::path& socket, std::string_view method,
                                           const nlohmann::json& params = nlohmann::json::object(),
                                           std::chrono::milliseconds timeout = kControlCallTimeout);

// Return false to stop listening.
using ControlEventFn = std::function<bool(const nlohmann::json& event)>;

// Subscribes and calls `on_event` with each event object ({"event":"…",…}) as it arrives.
// Returns ok once `on_event` returns false. Failed when the daemon closes the connection (it
// stopped), sends something that is not a JSON object, or — with a non-zero `idle_timeout` — no
// event arrives for that long. `timeout` bounds connecting and the subscribe answer.
ControlResult<void> control_subscribe(const std::filesystem::path& socket, const ControlEventFn& on_event,
                                      std::chrono::milliseconds idle_timeout = std::chrono::milliseconds::zero(),
                                      std::chrono::milliseconds timeout = kControlCallTimeout);

}  // namespace punchgate
