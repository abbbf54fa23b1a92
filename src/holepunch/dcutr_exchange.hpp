// The DCUtR exchange (libp2p/specs relay/DCUtR.md) as two sans-IO state machines, fed the bytes
// of the /libp2p/dcutr stream and the time, returning bytes to send and when and where to punch.
//
//   initiator (B, the side that accepted the relayed connection)      responder (A)
//   connect(now)     -> CONNECT(B's addrs)                        ->  feed(): CONNECT(A's addrs)
//   feed(reply, now) -> SYNC + punch {A's addrs, delay = RTT/2}   ->  feed(): punch {B's addrs, now}
//   (no direct connection after the punch: connect() again on the same stream, at most 3 attempts;
//    go-libp2p and js-libp2p answer one exchange per stream and end it: new_stream(), then connect())
//
// For QUIC the caller turns the plans into: A dials B's addresses from its listening socket at
// once; B, after the delay, sends random UDP packets to A's addresses, so A's packets find an open
// mapping and B ends up the QUIC server.
#pragma once

#include "holepunch/dcutr_message.hpp"
#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <optional>
#include <vector>

namespace punchgate {

struct DcutrPunch {
  std::vector<Multiaddr> remote_addrs;  // the other side's dialable (QUIC, direct) addresses
  uint64_t delay_ms = 0;                // initiator: wait this long (half the RTT) first
  uint64_t rtt_ms = 0;                  // initiator: the relayed round trip just measured
  size_t attempt = 1;
};

struct DcutrStep {
  Bytes to_send;
  std::optional<DcutrPunch> punch;
};

// An address worth offering or punching to: QUIC v1, not through a relay, not loopback or
// unspecified (a peer's 127.0.0.1:4001 is our own host, likely our own listener).
bool dcutr_punchable(const Multiaddr& a);
// Addresses a punch can use: the parseable punchable ones, without duplicates, in the order given.
std::vector<Multiaddr> dcutr_dialable(const std::vector<Bytes>& raw);

class DcutrInitiator {
 public:
  static constexpr size_t kMaxAttempts = 3;

  explicit DcutrInitiator(std::vector<Multiaddr> our_addrs);
  // CONNECT for the next attempt; the RTT is timed from `now_ms`. Empty once the attempts are
  // used up or after an error.
  Bytes connect(uint64_t now_ms);
  // Bytes from the responder. The CONNECT reply yields SYNC and the punch plan.
  Result<DcutrStep> feed(BytesView data, uint64_t now_ms);
  // The next attempt goes on a new stream (the peer ended the last one): nothing buffered is
  // kept, and a CONNECT still unanswered there does not count as an attempt.
  void new_stream();
  size_t attempt() const { return attempt_; }
  bool can_retry() const { return !failed_ && attempt_ < kMaxAttempts && !awaiting_; }

 private:
  Error fail(Error e);

  std::vector<Bytes> our_addrs_;
  UvarintFrameReader reader_{kMaxDcutrMessageSize};
  size_t attempt_ = 0;
  bool awaiting_ = false;  // CONNECT sent, reply not yet in
  uint64_t sent_at_ms_ = 0;
  bool failed_ = false;
};

class DcutrResponder {
 public:
  explicit DcutrResponder(std::vector<Multiaddr> our_addrs);
  // CONNECT: answer with ours; SYNC after a CONNECT: the plan, dial now. Repeats per attempt.
  Result<DcutrStep> feed(BytesView data);
  size_t attempt() const { return attempt_; }

 private:
  Error fail(Error e);

  std::vector<Bytes> our_addrs_;
  UvarintFrameReader reader_{kMaxDcutrMessageSize};
  std::vector<Multiaddr> remote_;
  bool connected_ = false;  // got a CONNECT, waiting for its SYNC
  size_t attempt_ = 0;
  bool failed_ = false;
};

}  // namespace punchgate
