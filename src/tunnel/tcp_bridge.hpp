// Copies bytes between a connected TCP socket and a stream, both ways, with backpressure:
// a full stream stops TCP reads; stream bytes count as consumed (reopening the peer's window)
// only once the TCP write completed. EOF on one side half-closes only that direction; an error or
// reset on one side resets the other.
#pragma once

#include "punchgate/core/uv_handle.hpp"
#include "punchgate/transport/connection.hpp"

#include <functional>
#include <memory>
#include <string>

namespace punchgate {

struct BridgeStats {
  uint64_t bytes_to_stream = 0;    // read from TCP, written to the stream
  uint64_t bytes_from_stream = 0;  // read from the stream, written to TCP
};

class TcpBridge : public std::enable_shared_from_this<TcpBridge> {
 public:
  // Called once when both directions are finished or either side failed.
  using DoneFn = std::function<void(const BridgeStats&, const std::string& reason)>;

  // Takes an initialised, connected TCP handle. `initial` is stream data that arrived with the
  // negotiation and goes to TCP first.
  static std::shared_ptr<TcpBridge> start(UvHandle<uv_tcp_t> tcp, StreamPtr stream, Bytes initial, DoneFn done);
  TcpBridge(UvHandle<uv_tcp_t> tcp, StreamPtr stream, DoneFn done);  // use start()

  // Aborts both sides (e.g. on shutdown).
  void abort(const std::string& reason);

 private:
  struct WriteReq;
  struct ShutdownReq;
  void begin(Bytes initial);
  void start_reading();
  void on_tcp_read(ssize_t n, const uv_buf_t* buf);
  void flush_pending_to_stream();
  void on_stream_data(BytesView d);
  void on_stream_fin();
  void on_stream_reset(uint64_t code);
  void on_write_done(size_t n, int status);
  void maybe_finish();
  void finish(const std::string& reason);

  UvHandle<uv_tcp_t> tcp_;
  StreamPtr stream_;
  DoneFn done_;
  std::shared_ptr<TcpBridge> self_;  // alive while either side is open
  BridgeStats stats_;
  Bytes pending_;                    // read from TCP, not yet taken by the stream
  size_t writes_in_flight_ = 0;
  bool reading_ = false;
  bool tcp_eof_ = false;         // TCP peer finished sending
  bool stream_fin_sent_ = false;
  bool stream_fin_ = false;      // stream peer finished sending
  bool tcp_shutdown_ = false;    // our TCP write side is shut down
  bool stream_closed_ = false;
  bool finished_ = false;
};

}  // namespace punchgate
