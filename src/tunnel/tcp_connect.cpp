#include "tunnel/tcp_connect.hpp"

#include <memory>

namespace punchgate {

namespace {

struct ConnectAttempt {
  explicit ConnectAttempt(uv_loop_t* loop) : timer(loop) {}
  uv_connect_t req{};
  UvHandle<uv_tcp_t> tcp;
  Timer timer;
  SockAddr to;
  bool timed_out = false;
  std::function<void(Result<UvHandle<uv_tcp_t>>)> done;
};

}  // namespace

void tcp_connect(uv_loop_t* loop, const SockAddr& to, std::function<void(Result<UvHandle<uv_tcp_t>>)> done) {
  auto a = std::make_unique<ConnectAttempt>(loop);
  a->to = to;
  a->done = std::move(done);
  uv_tcp_init(loop, a->tcp.get());
  a->tcp.mark_initialised();
  a->req.data = a.get();
  int rv = uv_tcp_connect(&a->req, a->tcp.get(), to.get(), [](uv_connect_t* req, int status) {
    std::unique_ptr<ConnectAttempt> owned(static_cast<ConnectAttempt*>(req->data));
    owned->timer.stop();
    if (owned->timed_out) {
      return owned->done(make_error("cannot connect to {}: timed out", owned->to.to_string()));
    }
    if (status != 0) {
      return owned->done(make_error("cannot connect to {}: {}", owned->to.to_string(), uv_strerror(status)));
    }
    owned->done(std::move(owned->tcp));
  });
  if (rv != 0) {
    return a->done(make_error("cannot connect to {}: {}", to.to_string(), uv_strerror(rv)));
  }
  ConnectAttempt* raw = a.release();  // owned by the pending connect until its callback
  raw->timer.start(kTcpConnectTimeoutMs, 0, [raw] {
    // Closing the handle cancels the connect; its callback then reports the timeout.
    raw->timed_out = true;
    raw->tcp.close();
  });
}

}  // namespace punchgate

