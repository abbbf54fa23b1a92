// Ping (/ipfs/ping/1.0.0): echoes inbound pings, measures round trips on request, and pings every
// connection periodically (logging `ping peer=… rtt_ms=…`), which also keeps idle paths alive.
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/transport/connection.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

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
  // The latest round trip measured on `conn` (periodic or requested ping), if any.
  std::optional<Rtt> last_rtt(const Connection& conn) const;

 private:
  void serve(StreamPtr stream, Bytes leftover);
  void ping_all();

  Host& host_;
  uint64_t interval_ms_;
  std::unique_ptr<Timer> timer_;
  std::unordered_map<uint64_t, Rtt> last_rtt_;  // by connection id; pruned on each periodic round
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace punchgate
