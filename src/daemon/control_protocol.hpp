// The control socket's wire format, without IO: line framing, request parsing and the response
// and event lines. One JSON object per '\n'-terminated line (docs: issue 7 control contract).
#pragma once

#include "punchgate/core/bytes.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace punchgate {

// Longest request line the server accepts, in bytes before the '\n'.
inline constexpr size_t kMaxControlRequestBytes = 65536;
// Longest response or event line a client accepts: a status with many peers and tunnels is far
// larger than any request.
inline constexpr size_t kMaxControlResponseBytes = 16 * 1024 * 1024;
// Deepest nesting of arrays/objects in a request. Copying or printing JSON recurses, so a
// pathologically deep id or params must not reach the handler or the response.
inline constexpr size_t kMaxControlRequestDepth = 32;

struct ControlRequest {
  nlohmann::json id;      // any JSON value; null when absent
  std::string method;
  nlohmann::json params;  // always an object ({} when absent)
};

struct ControlRequestError {
  nlohmann::json id;      // the request's id when it was an object with one, else null
  std::string message;    // one line, sent to the client as the error
};

// Parses one request line (without its '\n'). The error's message is what the client is told.
std::variant<ControlRequest, ControlRequestError> parse_control_request(std::string_view line);

// Lines to send, each ending in '\n'. Invalid UTF-8 in strings is replaced, never thrown about.
std::string control_ok_line(const nlohmann::json& id, const nlohmann::json& result);
std::string control_error_line(const nlohmann::json& id, std::string_view message);
std::string control_event_line(const nlohmann::json& event);
// The error every client gets for a line over kMaxControlRequestBytes.
std::string control_too_large_message();

// JSON text that never throws: invalid UTF-8 in strings becomes U+FFFD.
std::string control_dump(const nlohmann::json& j);

// Splits a byte stream into lines. A line may hold up to `max_line` bytes before its '\n'; a
// trailing '\r' is dropped (so CRLF clients work). A longer line, complete or not, makes the reader
// stop for good: too_large() turns true and the bytes after it are ignored. Lines that came
// before the oversized one are still returned.
class ControlLineReader {
 public:
  explicit ControlLineReader(size_t max_line = kMaxControlRequestBytes) : max_line_(max_line) {}

  void feed(BytesView bytes);
  // The next complete line, or nullopt when none is buffered (or the reader stopped).
  std::optional<std::string> next();
  bool too_large() const { return too_large_; }
  size_t max_line() const { return max_line_; }
  // Bytes held that are not yet part of a returned line.
  size_t buffered() const { return buf_.size() - start_; }

 private:
  size_t max_line_;
  std::string buf_;
  size_t start_ = 0;    // first byte not yet returned
  size_t scanned_ = 0;  // bytes from start_ known to hold no '\n'
  bool too_large_ = false;
};

}  // namespace punchgate
