// Blocking client of the control socket for one-shot CLI commands (`punchgate status`, `tunnel
// add`, …): plain POSIX sockets, no event loop. Wire format: daemon/control_protocol.hpp.
#pragma once

#include "punchgate/core/result.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace punchgate {

struct ControlCallError {
  // NotRunning: nothing listens at the socket path (no file, or a stale one nobody answers on);
  // a CLI exits with "not running" status. Failed: everything else (timeout, permission denied,
  // connection lost, malformed reply, or the daemon answered ok:false).
  enum Kind { NotRunning, Failed } kind = Failed;
  std::string message;  // one line, ready to print
};

// Result with a ControlCallError instead of an Error, so callers can tell the kinds apart.
template <typename T>
using ControlResult = Result<T, ControlCallError>;

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
