// Arbitrary bytes through the control socket's server-side path: line splitting (in chunks the
// input chooses), request parsing and the response lines. Nothing may crash or throw, and every
// line built must be one valid JSON object ending in its only '\n'.
#include "daemon/control_protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

using namespace punchgate;
using nlohmann::json;

namespace {

void check_line(const std::string& line) {
  if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1) __builtin_trap();
  json back = json::parse(line.begin(), line.end() - 1, nullptr, /*allow_exceptions=*/false);
  if (!back.is_object()) __builtin_trap();
}

void handle(const std::string& line) {
  auto parsed = parse_control_request(line);
  if (auto* err = std::get_if<ControlRequestError>(&parsed)) {
    if (err->message.empty()) __builtin_trap();
    std::string out = control_error_line(err->id, err->message);
    check_line(out);
    // The id is echoed unchanged.
    json back = json::parse(out, nullptr, false);
    if (back["id"] != err->id) __builtin_trap();
    return;
  }
  auto& req = std::get<ControlRequest>(parsed);
  if (!req.params.is_object()) __builtin_trap();
  // What a handler might answer: the request itself, and an error naming the method.
  std::string ok = control_ok_line(req.id, json{{"method", req.method}, {"params", req.params}});
  check_line(ok);
  json back = json::parse(ok, nullptr, false);
  if (back["id"] != req.id || back["result"]["params"] != req.params) __builtin_trap();
  check_line(control_error_line(req.id, "unknown method \"" + req.method + "\""));
  check_line(control_event_line(json{{"event", req.method}, {"params", req.params}}));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte: chunk size for feeding (1..256) and which line limit to use, so both the real
  // cap and a small one (reachable by short inputs) are exercised.
  const size_t chunk = static_cast<size_t>(data[0] & 0x7f) * 2 + 1;
  const size_t limit = (data[0] & 0x80) ? kMaxControlRequestBytes : 64;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  ControlLineReader reader(limit);
  size_t total_lines = 0;
  while (!in.empty()) {
    std::string_view piece = in.substr(0, chunk);
    in.remove_prefix(piece.size());
    reader.feed(piece);
    while (auto line = reader.next()) {
      if (line->size() > limit || line->find('\n') != std::string::npos) __builtin_trap();
      ++total_lines;
      handle(*line);
    }
    if (reader.buffered() > limit + chunk) __builtin_trap();  // bounded no matter the input
    if (reader.too_large()) break;
  }
  if (total_lines > size) __builtin_trap();
  return 0;
}
