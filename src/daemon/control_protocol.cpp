#include "daemon/control_protocol.hpp"

#include <fmt/format.h>

#include <utility>

namespace punchgate {

namespace {

using nlohmann::json;

// Deepest array/object nesting in JSON text, counted outside strings. Works on any bytes, so it
// runs before the parser and bounds what the parser builds.
size_t nesting_depth(std::string_view text) {
  size_t depth = 0;
  size_t max_depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

std::string control_dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::variant<ControlRequest, ControlRequestError> parse_control_request(std::string_view line) {
  if (nesting_depth(line) > kMaxControlRequestDepth) {
    return ControlRequestError{nullptr, fmt::format("request nests deeper than {} levels", kMaxControlRequestDepth)};
  }
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return ControlRequestError{nullptr, "request is not valid JSON"};
  if (!j.is_object()) {
    return ControlRequestError{nullptr, fmt::format("request must be a JSON object, got {}", j.type_name())};
  }
  ControlRequest req;
  if (auto it = j.find("id"); it != j.end()) req.id = std::move(*it);
  auto method = j.find("method");
  if (method == j.end()) return ControlRequestError{std::move(req.id), "request has no \"method\""};
  if (!method->is_string()) {
    return ControlRequestError{std::move(req.id), fmt::format("\"method\" must be a string, got {}", method->type_name())};
  }
  req.method = method->get_ref<const std::string&>();
  if (auto params = j.find("params"); params != j.end()) {
    if (!params->is_object()) {
      return ControlRequestError{std::move(req.id),
                                 fmt::format("\"params\" must be an object, got {}", params->type_name())};
    }
    req.params = std::move(*params);
  } else {
    req.params = json::object();
  }
  return req;
}

std::string control_ok_line(const json& id, const json& result) {
  // Built by hand so the fields come in the documented order ("id" first), which reads better in
  // `socat` sessions; nlohmann's object sorts keys.
  return fmt::format("{{\"id\":{},\"ok\":true,\"result\":{}}}\n", control_dump(id), control_dump(result));
}

std::string control_error_line(const json& id, std::string_view message) {
  return fmt::format("{{\"id\":{},\"ok\":false,\"error\":{}}}\n", control_dump(id),
                     control_dump(json(std::string(message))));
}

std::string control_event_line(const json& event) { return control_dump(event) + "\n"; }

std::string control_too_large_message() {
  return fmt::format("request too large (limit {} bytes)", kMaxControlRequestBytes);
}

void ControlLineReader::feed(BytesView bytes) {
  if (too_large_) return;
  buf_.append(bytes);
  // More than a line's worth with no '\n' in it: that line is already too large, so stop
  // buffering now rather than on the next next().
  if (buf_.size() - start_ > max_line_ && buf_.find('\n', start_ + scanned_) == std::string::npos) {
    too_large_ = true;
    buf_.clear();
    start_ = scanned_ = 0;
  }
}

std::optional<std::string> ControlLineReader::next() {
  if (too_large_) return std::nullopt;
  size_t nl = buf_.find('\n', start_ + scanned_);
  if (nl == std::string::npos) {
    scanned_ = buf_.size() - start_;
    if (scanned_ > max_line_) {
      too_large_ = true;
      buf_.clear();
      start_ = scanned_ = 0;
      return std::nullopt;
    }
    // Drop the returned prefix once it dominates, so the buffer does not creep.
    if (start_ > 0 && start_ >= buf_.size() / 2) {
      buf_.erase(0, start_);
      start_ = 0;
    }
    return std::nullopt;
  }
  size_t len = nl - start_;
  if (len > max_line_) {
    too_large_ = true;
    buf_.clear();
    start_ = scanned_ = 0;
    return std::nullopt;
  }
  std::string line = buf_.substr(start_, len);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  start_ = nl + 1;
  scanned_ = 0;
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  }
  return line;
}

}  // namespace punchgate
