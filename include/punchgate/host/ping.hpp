// /ipfs/ping/1.0.0 (libp2p/specs ping/ping.md): the dialer writes 32 random bytes, the listener
// echoes them, the dialer measures the round trip. Sans-IO: the caller supplies time and randomness.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <vector>

namespace punchgate {

inline constexpr size_t kPingPayloadSize = 32;

// Listener side: echoes every complete 32-byte payload, holding at most 31 bytes in between.
class PingResponder {
 public:
  // Returns the bytes to write back (a multiple of 32, possibly empty).
  Bytes feed(BytesView data);
  size_t pending() const { return partial_.size(); }

 private:
  Bytes partial_;
};

// Dialer side. Payloads may be pipelined; echoes must come back in order.
class PingInitiator {
 public:
  using Clock = std::chrono::steady_clock;
  // Fills its argument with random bytes (libsodium's randombytes_buf in production).
  using RandomSource = std::function<void(std::span<uint8_t>)>;

  // A fresh payload to write, remembered with `sent_at` (the caller's clock, taken at write time).
  Bytes next_payload(const RandomSource& random, Clock::time_point sent_at);
  // Consumes echoed bytes received at `now`; returns the RTT of each payload completed, oldest
  // first. Error when the echo differs from what was sent or arrives without a ping outstanding.
  // Stays failed after an error.
  Result<std::vector<Clock::duration>> feed(BytesView data, Clock::time_point now);

  size_t outstanding() const { return sent_.size(); }

 private:
  struct Sent {
    Bytes payload;
    Clock::time_point at;
  };
  std::deque<Sent> sent_;
  size_t matched_ = 0;  // bytes of sent_.front() already echoed correctly
  bool failed_ = false;
};

}  // namespace punchgate
