// Ping (/ipfs/ping/1.0.0): echoes inbound pings, measures round trips on request, and pings every
// connection periodically (logging `ping peer=… rtt_ms=…`), which also keeps idle paths alive.
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/transport/connection.hpp"

#include <chrono>
#include <functional>
#include <memory>

namespace punchgate {

class Host;
class Timer;

class PingService {
 public:
  using Rtt = std::chrono::steady_clock::duration;
  // Called after each ping: seq counts from 1; the final call has last = true (also on error).
  using ResultFn = std::function<void(uint32_t seq, Result<Rtt> rtt, bool last)>;

  PingService(Host& host, uint64_t interval_ms);
  ~PingService();

  // Sends `count` pings `interval_ms` apart on one stream.
  void ping(const ConnectionPtr& conn, uint32_t count, uint64_t interval_ms, ResultFn cb);

 private:
  void serve(StreamPtr stream, Bytes leftover);
  void ping_all();

  Host& host_;
  uint64_t interval_ms_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace punchgate
