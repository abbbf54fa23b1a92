// The relay's half of a circuit: copies bytes between the source's HOP stream and the
// destination's STOP stream with backpressure (a side that cannot take more stops the other
// side's flow-control window), half-closes through, and enforces the circuit's limits (bytes
// each way, duration) by resetting both streams when one is reached.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/transport/connection.hpp"
#include "relay/hop_server.hpp"

#include <uv.h>

#include <array>
#include <functional>
#include <memory>
#include <string>

namespace punchgate {

class Timer;

class CircuitSplice : public std::enable_shared_from_this<CircuitSplice> {
 public:
  struct Ends {
    StreamPtr src;
    StreamPtr dst;
    Bytes src_rest;  // bytes the source sent after its CONNECT, not yet forwarded
    Bytes dst_rest;  // bytes the destination sent after its STOP reply
  };
  // Called once: why the circuit ended and the bytes carried each way.
  using ClosedFn = std::function<void(const std::string& reason, uint64_t src_to_dst, uint64_t dst_to_src)>;

  // data_limit: bytes per direction (0: none); duration_s: seconds (0: none).
  static std::shared_ptr<CircuitSplice> start(uv_loop_t* loop, Ends ends, uint64_t data_limit, uint32_t duration_s,
                                              ClosedFn closed);
  ~CircuitSplice();
  // Ends the circuit now (relay shutting down): both streams are reset.
  void abort(const std::string& reason);
  bool finished() const { return done_; }

  CircuitSplice(uv_loop_t* loop, Ends ends, uint64_t data_limit, ClosedFn closed);

 private:
  struct Direction {
    StreamPtr from;
    StreamPtr to;
    Bytes pending;       // received from `from`, not yet taken by `to`
    bool fin_received = false;
    bool fin_sent = false;
  };
  void wire(int dir);
  void on_data(int dir, BytesView data);
  void forward(int dir);
  void finish(const std::string& reason, bool reset);

  std::array<Direction, 2> dirs_;  // CircuitBudget::kSrcToDst, kDstToSrc
  CircuitBudget budget_;
  std::unique_ptr<Timer> deadline_;
  ClosedFn closed_;
  bool done_ = false;
};

}  // namespace punchgate
