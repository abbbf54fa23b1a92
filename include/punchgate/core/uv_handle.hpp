// RAII ownership of libuv handles. A handle's memory must outlive uv_close() until its close
// callback runs, so ownership passes to libuv at close time and the callback frees it.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace punchgate {

template <typename H>
class UvHandle {
 public:
  UvHandle() : h_(std::make_unique<H>()) {}
  UvHandle(UvHandle&&) noexcept = default;
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::move(o.h_);
    }
    return *this;
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() { close(); }

  H* get() const { return h_.get(); }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_.get()); }
  explicit operator bool() const { return static_cast<bool>(h_); }

  // Only call once the handle was initialised with uv_<type>_init; otherwise use reset_uninit().
  void close() {
    if (!h_) return;
    if (initialised_) {
      uv_handle_t* raw = reinterpret_cast<uv_handle_t*>(h_.release());
      raw->data = nullptr;
      if (!uv_is_closing(raw)) {
        uv_close(raw, [](uv_handle_t* p) { std::unique_ptr<H> reclaim(reinterpret_cast<H*>(p)); });
      }
    } else {
      h_.reset();
    }
  }
  void mark_initialised() { initialised_ = true; }

  // TCP only: close with an RST rather than a FIN, so the remote application sees an abort.
  void close_reset()
    requires std::is_same_v<H, uv_tcp_t>
  {
    if (!h_ || !initialised_) return close();
    uv_tcp_t* raw = h_.get();
    raw->data = nullptr;
    if (uv_is_closing(handle())) return close();
    auto reclaim = [](uv_handle_t* p) { std::unique_ptr<H> r(reinterpret_cast<H*>(p)); };
    if (uv_tcp_close_reset(raw, reclaim) == 0) {
      h_.release();
    } else {
      close();  // e.g. a shutdown is pending: a plain close is all that is left
    }
  }

 private:
  std::unique_ptr<H> h_;
  bool initialised_ = false;
};

// A repeating or one-shot timer calling a std::function.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  Timer(Timer&&) = delete;
  ~Timer() = default;

  void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb);
  void stop();
  bool active() const { return uv_is_active(h_.handle()) != 0; }

 private:
  UvHandle<uv_timer_t> h_;
  std::function<void()> cb_;
};

// SIGINT/SIGTERM-style signal watcher.
class SignalWatcher {
 public:
  SignalWatcher(uv_loop_t* loop, int signum, std::function<void(int)> cb);
  SignalWatcher(SignalWatcher&&) = delete;
  // Lets the loop exit while the watcher still exists.
  void unref() { uv_unref(h_.handle()); }

 private:
  UvHandle<uv_signal_t> h_;
  std::function<void(int)> cb_;
};

}  // namespace punchgate
