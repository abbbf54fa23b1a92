// stdin/stdout as the local side of a bridge (punchgate pipe): pipes, sockets, terminals, and
// regular files (relayed through a socket pair by a thread, since libuv cannot poll files).
#pragma once

#include "punchgate/core/result.hpp"
#include "tunnel/tcp_bridge.hpp"

#include <variant>

namespace punchgate {

// Waits for file relay threads; call after the loop has closed every handle.
void join_stdio_threads();

class StdioLocalEnd final : public LocalEnd {
 public:
  static Result<std::unique_ptr<StdioLocalEnd>> open(uv_loop_t* loop, int in_fd, int out_fd);
  uv_stream_t* reader() override;
  uv_stream_t* writer() override;
  void close() override;
  void close_reset() override { close(); }

 private:
  using Handle = std::variant<std::monostate, UvHandle<uv_pipe_t>, UvHandle<uv_tty_t>, UvHandle<uv_tcp_t>>;
  static Status open_fd(uv_loop_t* loop, int fd, bool readable, Handle& out);
  static uv_stream_t* stream_of(Handle& h);
  Handle in_;
  Handle out_;
};

}  // namespace punchgate
