// The process's one libuv loop, drained on exit so every handle's memory is released.
#pragma once

#include "punchgate/core/log.hpp"

#include <uv.h>

namespace punchgate {

class EventLoop {
 public:
  EventLoop() { uv_loop_init(&loop_); }
  ~EventLoop() {
    // Run until only handles nobody is closing remain: those belong to objects still alive (a
    // leak), and waiting for their timers would only delay the exit.
    for (int i = 0; i < 100 && closing_handles() > 0; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) spdlog::debug("handle still open at exit type={}", uv_handle_type_name(h->type));
        },
        nullptr);
    uv_loop_close(&loop_);
  }
  uv_loop_t* get() { return &loop_; }

 private:
  size_t closing_handles() {
    size_t n = 0;
    uv_walk(&loop_, [](uv_handle_t* h, void* arg) { *static_cast<size_t*>(arg) += uv_is_closing(h) ? 1 : 0; }, &n);
    return n;
  }
  uv_loop_t loop_{};
};

}  // namespace punchgate
