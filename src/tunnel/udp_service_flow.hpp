// Provider side of one UDP tunnel flow: a stream of framed datagrams <-> a UDP socket connected
// to the exposed target. Idle flows expire.
#pragma once

#include "punchgate/core/sockaddr.hpp"
#include "punchgate/core/uv_handle.hpp"
#include "punchgate/transport/connection.hpp"

#include <functional>
#include <memory>
#include <string>

namespace punchgate {

inline constexpr uint64_t kUdpFlowIdleMs = 60'000;

class UdpServiceFlow : public std::enable_shared_from_this<UdpServiceFlow> {
 public:
  using DoneFn = std::function<void(UdpServiceFlow*, const std::string& reason)>;

  static Result<std::shared_ptr<UdpServiceFlow>> start(uv_loop_t* loop, StreamPtr stream, const SockAddr& target,
                                                       Bytes initial, DoneFn done);
  UdpServiceFlow(uv_loop_t* loop, StreamPtr stream, DoneFn done);  // use start()

  void close(const std::string& reason);
  uint64_t bytes_to_target() const { return to_target_; }
  uint64_t bytes_from_target() const { return from_target_; }

 private:
  Status open(const SockAddr& target);
  void on_stream_data(BytesView d);
  void on_datagram(BytesView d);
  void touch();

  uv_loop_t* loop_;
  StreamPtr stream_;
  DoneFn done_;
  UvHandle<uv_udp_t> udp_;
  Timer idle_;
  Bytes rx_;
  uint64_t to_target_ = 0;
  uint64_t from_target_ = 0;
  uint64_t last_activity_ = 0;
  bool closed_ = false;
};

}  // namespace punchgate
