// multistream-select 1.0 (multiformats/multistream-select): sans-IO dialer and listener.
// Every message is uvarint(len) || line || '\n', len counting the newline.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace punchgate {

inline constexpr std::string_view kMultistreamHeader = "/multistream/1.0.0";
// Largest accepted message, newline included (go-multistream and js-libp2p use 1024 too).
inline constexpr size_t kMaxMultistreamLine = 1024;
// Requests (proposals and "ls") a listener answers before giving up; also the most a dialer proposes.
inline constexpr size_t kMaxMultistreamProposals = 32;

// uvarint(line.size() + 1) || line || '\n'.
Bytes multistream_message(std::string_view line);
// The reply to "ls" as go-multistream and rust-libp2p send it: one message whose body is each
// protocol as its own multistream_message, followed by a lone '\n'.
Bytes multistream_ls_reply(const std::vector<std::string>& protocols);
// Parses the body of an "ls" reply message (the bytes after the outer length prefix).
Result<std::vector<std::string>> parse_multistream_ls_reply(BytesView body);

enum class MultistreamState { Pending, Selected, Failed };

struct MultistreamOutcome {
  MultistreamState state = MultistreamState::Pending;
  // To write to the peer, also when Failed (answers produced before the failure); then close.
  Bytes to_send;
  std::string protocol;  // Selected: the negotiated protocol
  std::string error;     // Failed: why
  // Selected: bytes that followed the final negotiation line. They belong to the application
  // protocol and must be handed to it.
  Bytes leftover;
};

// Proposes protocols in preference order, pipelining the header with the first proposal.
class MultistreamDialer {
 public:
  explicit MultistreamDialer(std::vector<std::string> protocols_in_preference_order);

  // Header + first proposal, to send at once. Call exactly once, before feed(). Returns nothing and
  // leaves the dialer Failed when the protocol list is empty or invalid.
  Bytes start();
  // Consumes bytes from the listener. After Selected, further bytes are returned as leftover;
  // after Failed, the same failure is returned.
  MultistreamOutcome feed(BytesView data);

  MultistreamState state() const { return state_; }
  const std::string& protocol() const { return protocol_; }
  const std::string& error() const { return error_; }

 private:
  MultistreamOutcome fail(MultistreamOutcome out, std::string message);

  std::vector<std::string> protocols_;
  size_t index_ = 0;  // proposal awaiting an answer
  bool started_ = false;
  bool header_received_ = false;
  Bytes buf_;  // at most one partial message between feed() calls
  MultistreamState state_ = MultistreamState::Pending;
  std::string protocol_;
  std::string error_;
};

// Answers a dialer: echoes the header, "na" for unsupported proposals, the protocol list for "ls",
// and echoes the first supported proposal.
class MultistreamListener {
 public:
  using SupportPredicate = std::function<bool(std::string_view)>;

  // Supports exactly `protocols`; "ls" lists them.
  explicit MultistreamListener(std::vector<std::string> protocols);
  // Supports what `predicate` accepts (e.g. prefixes or versions it cannot enumerate);
  // "ls" lists `advertised`.
  MultistreamListener(SupportPredicate predicate, std::vector<std::string> advertised);

  // Consumes bytes from the dialer. After Selected, further bytes are returned as leftover;
  // after Failed, the same failure is returned.
  MultistreamOutcome feed(BytesView data);

  MultistreamState state() const { return state_; }
  const std::string& protocol() const { return protocol_; }
  const std::string& error() const { return error_; }

 private:
  MultistreamOutcome fail(MultistreamOutcome out, std::string message);
  bool supports(std::string_view protocol) const;

  SupportPredicate supports_;  // empty: exactly the advertised list
  std::vector<std::string> advertised_;
  bool header_received_ = false;
  size_t requests_ = 0;
  Bytes buf_;  // at most one partial message between feed() calls
  MultistreamState state_ = MultistreamState::Pending;
  std::string protocol_;
  std::string error_;
};

}  // namespace punchgate
