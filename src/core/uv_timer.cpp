#include "punchgate/core/uv_handle.hpp"

namespace punchgate {

Timer::Timer(uv_loop_t* loop) {
  uv_timer_init(loop, h_.get());
  h_.mark_initialised();
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb) {
  cb_ = std::move(cb);
  h_.get()->data = this;
  uv_timer_start(
      h_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Timer*>(t->data);
        if (self && self->cb_) {
          // Copy: the callback may restart or destroy the timer.
          auto fn = self->cb_;
          fn();
        }
      },
      timeout_ms, repeat_ms);
}

void Timer::stop() {
  uv_timer_stop(h_.get());
  // Drop the callback too: its captures often own the object that owns this timer.
  cb_ = nullptr;
}

SignalWatcher::SignalWatcher(uv_loop_t* loop, int signum, std::function<void(int)> cb) : cb_(std::move(cb)) {
  uv_signal_init(loop, h_.get());
  h_.mark_initialised();
  h_.get()->data = this;
  uv_signal_start(
      h_.get(),
      [](uv_signal_t* s, int sig) {
        auto* self = static_cast<SignalWatcher*>(s->data);
        if (self && self->cb_) self->cb_(sig);
      },
      signum);
}

}  // namespace punchgate
