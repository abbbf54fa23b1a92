#include "punchgate/wire/multistream.hpp"

#include "punchgate/wire/varint.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace punchgate {

namespace {

constexpr std::string_view kNa = "na";
constexpr std::string_view kLs = "ls";

// Peer-controlled text quoted in errors: shortened and with control bytes escaped.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// Reads one message at the front of `in`: ok(nullopt) when incomplete, else the line without its
// newline and `used` set to the bytes it took. Oversize lengths fail as soon as the prefix is read.
Result<std::optional<std::string_view>> read_message(BytesView in, size_t& used) {
  uint64_t len = 0;
  auto n = get_uvarint(in, len);
  if (!n) return make_error("bad multistream message length: {}", n.error().message);
  if (*n == 0) return std::optional<std::string_view>{};
  if (len == 0) return make_error("empty multistream message");
  if (len > kMaxMultistreamLine) {
    return make_error("multistream message of {} bytes exceeds limit of {}", len, kMaxMultistreamLine);
  }
  if (in.size() - *n < len) return std::optional<std::string_view>{};
  BytesView msg = in.substr(*n, len);
  if (msg.back() != '\n') return make_error("multistream message does not end in a newline");
  used = *n + len;
  return std::optional<std::string_view>(msg.substr(0, msg.size() - 1));
}

// A protocol we propose or advertise must fit one message and be a single line.
Status check_protocol_id(std::string_view p) {
  if (p.empty()) return make_error("empty protocol id");
  if (p.find('\n') != std::string_view::npos) return make_error("protocol id contains a newline");
  if (p.size() + 1 > kMaxMultistreamLine) return make_error("protocol id of {} bytes is too long", p.size());
  if (p == kNa || p == kLs || p == kMultistreamHeader) {
    return make_error("'{}' is reserved by multistream-select", p);
  }
  return {};
}

}  // namespace

Bytes multistream_message(std::string_view line) {
  Bytes out;
  out.reserve(line.size() + 1 + kMaxUvarintLen);
  put_uvarint(out, line.size() + 1);
  out.append(line);
  out.push_back('\n');
  return out;
}

Bytes multistream_ls_reply(const std::vector<std::string>& protocols) {
  Bytes body;
  for (const auto& p : protocols) body += multistream_message(p);
  body.push_back('\n');
  Bytes out;
  put_uvarint(out, body.size());
  out += body;
  return out;
}

Result<std::vector<std::string>> parse_multistream_ls_reply(BytesView body) {
  if (body.empty() || body.back() != '\n') return make_error("ls reply does not end in a newline");
  body.remove_suffix(1);
  std::vector<std::string> out;
  while (!body.empty()) {
    // Bounded by the caller's body size; this cap only stops absurd lists of tiny entries.
    if (out.size() >= 1024) return make_error("ls reply lists too many protocols");
    size_t used = 0;
    auto line = read_message(body, used);
    if (!line) return line.error();
    if (!line->has_value()) return make_error("truncated ls reply entry");
    out.emplace_back(**line);
    body.remove_prefix(used);
  }
  return out;
}

// ---- dialer ----

MultistreamDialer::MultistreamDialer(std::vector<std::string> protocols_in_preference_order)
    : protocols_(std::move(protocols_in_preference_order)) {}

MultistreamOutcome MultistreamDialer::fail(MultistreamOutcome out, std::string message) {
  state_ = MultistreamState::Failed;
  error_ = std::move(message);
  buf_.clear();
  buf_.shrink_to_fit();
  out.state = state_;
  out.error = error_;
  return out;
}

Bytes MultistreamDialer::start() {
  if (started_ || state_ != MultistreamState::Pending) return {};
  started_ = true;
  if (protocols_.empty()) {
    (void)fail({}, "no protocols to propose");
    return {};
  }
  if (protocols_.size() > kMaxMultistreamProposals) {
    (void)fail({}, fmt::format("{} protocols exceed the limit of {} proposals", protocols_.size(),
                               kMaxMultistreamProposals));
    return {};
  }
  for (const auto& p : protocols_) {
    auto ok = check_protocol_id(p);
    if (!ok) {
      (void)fail({}, fmt::format("cannot propose '{}': {}", printable(p), ok.error().message));
      return {};
    }
  }
  return multistream_message(kMultistreamHeader) + multistream_message(protocols_.front());
}

MultistreamOutcome MultistreamDialer::feed(BytesView data) {
  MultistreamOutcome out;
  if (state_ == MultistreamState::Failed) return fail(std::move(out), error_);
  if (state_ == MultistreamState::Selected) {
    out.state = state_;
    out.protocol = protocol_;
    out.leftover = Bytes(data);
    return out;
  }
  if (!started_) return fail(std::move(out), "multistream dialer fed before start()");

  buf_.append(data);
  BytesView rest(buf_);
  while (true) {
    size_t used = 0;
    auto msg = read_message(rest, used);
    if (!msg) return fail(std::move(out), msg.error().message);
    if (!msg->has_value()) break;
    std::string_view line = **msg;
    rest.remove_prefix(used);

    if (!header_received_) {
      if (line != kMultistreamHeader) {
        return fail(std::move(out), fmt::format("unsupported multistream header '{}'", printable(line)));
      }
      header_received_ = true;
      continue;
    }
    const std::string& proposed = protocols_[index_];
    if (line == proposed) {
      state_ = MultistreamState::Selected;
      protocol_ = proposed;
      out.state = state_;
      out.protocol = protocol_;
      out.leftover = Bytes(rest);
      buf_.clear();
      buf_.shrink_to_fit();
      return out;
    }
    if (line == kNa) {
      if (++index_ == protocols_.size()) {
        return fail(std::move(out), fmt::format("peer supports none of {}", fmt::join(protocols_, ", ")));
      }
      out.to_send += multistream_message(protocols_[index_]);
      continue;
    }
    return fail(std::move(out),
                fmt::format("unexpected reply '{}' to proposal '{}'", printable(line), printable(proposed)));
  }
  buf_.erase(0, buf_.size() - rest.size());
  return out;
}

// ---- listener ----

MultistreamListener::MultistreamListener(std::vector<std::string> protocols) : advertised_(std::move(protocols)) {}

MultistreamListener::MultistreamListener(SupportPredicate predicate, std::vector<std::string> advertised)
    : supports_(std::move(predicate)), advertised_(std::move(advertised)) {}

bool MultistreamListener::supports(std::string_view p) const {
  // Without a predicate the advertised list is the supported set (kept as data so copies stay valid).
  if (supports_) return supports_(p);
  return std::find(advertised_.begin(), advertised_.end(), p) != advertised_.end();
}

MultistreamOutcome MultistreamListener::fail(MultistreamOutcome out, std::string message) {
  state_ = MultistreamState::Failed;
  error_ = std::move(message);
  buf_.clear();
  buf_.shrink_to_fit();
  out.state = state_;
  out.error = error_;
  return out;
}

MultistreamOutcome MultistreamListener::feed(BytesView data) {
  MultistreamOutcome out;
  if (state_ == MultistreamState::Failed) return fail(std::move(out), error_);
  if (state_ == MultistreamState::Selected) {
    out.state = state_;
    out.protocol = protocol_;
    out.leftover = Bytes(data);
    return out;
  }

  buf_.append(data);
  BytesView rest(buf_);
  while (true) {
    size_t used = 0;
    auto msg = read_message(rest, used);
    if (!msg) return fail(std::move(out), msg.error().message);
    if (!msg->has_value()) break;
    std::string_view line = **msg;
    rest.remove_prefix(used);

    if (!header_received_) {
      if (line != kMultistreamHeader) {
        return fail(std::move(out), fmt::format("unsupported multistream header '{}'", printable(line)));
      }
      header_received_ = true;
      out.to_send += multistream_message(kMultistreamHeader);
      continue;
    }
    if (++requests_ > kMaxMultistreamProposals) {
      return fail(std::move(out), fmt::format("more than {} proposals", kMaxMultistreamProposals));
    }
    if (line == kLs) {
      out.to_send += multistream_ls_reply(advertised_);
      continue;
    }
    // The reserved words are never protocols, whatever the predicate says.
    if (line != kNa && line != kMultistreamHeader && !line.empty() && supports(line)) {
      state_ = MultistreamState::Selected;
      protocol_ = std::string(line);
      out.to_send += multistream_message(line);
      out.state = state_;
      out.protocol = protocol_;
      out.leftover = Bytes(rest);
      buf_.clear();
      buf_.shrink_to_fit();
      return out;
    }
    out.to_send += multistream_message(kNa);
  }
  buf_.erase(0, buf_.size() - rest.size());
  return out;
}

}  // namespace punchgate
