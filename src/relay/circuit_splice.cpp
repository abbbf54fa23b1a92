#include "relay/circuit_splice.hpp"

#include "punchgate/core/uv_handle.hpp"

namespace punchgate {

CircuitSplice::CircuitSplice(uv_loop_t* loop, Ends ends, uint64_t data_limit, ClosedFn closed)
    : budget_(data_limit), deadline_(std::make_unique<Timer>(loop)), closed_(std::move(closed)) {
  dirs_[CircuitBudget::kSrcToDst].from = ends.src;
  dirs_[CircuitBudget::kSrcToDst].to = ends.dst;
  dirs_[CircuitBudget::kDstToSrc].from = ends.dst;
  dirs_[CircuitBudget::kDstToSrc].to = ends.src;
}

CircuitSplice::~CircuitSplice() = default;

std::shared_ptr<CircuitSplice> CircuitSplice::start(uv_loop_t* loop, Ends ends, uint64_t data_limit,
                                                    uint32_t duration_s, ClosedFn closed) {
  Bytes src_rest = std::move(ends.src_rest), dst_rest = std::move(ends.dst_rest);
  auto s = std::make_shared<CircuitSplice>(loop, std::move(ends), data_limit, std::move(closed));
  if (duration_s > 0) {
    std::weak_ptr<CircuitSplice> weak = s;
    s->deadline_->start(uint64_t{duration_s} * 1000, 0, [weak] {
      if (auto self = weak.lock()) self->finish("duration limit reached", true);
    });
  }
  s->wire(CircuitBudget::kSrcToDst);
  s->wire(CircuitBudget::kDstToSrc);
  if (!src_rest.empty()) s->on_data(CircuitBudget::kSrcToDst, src_rest);
  if (!dst_rest.empty() && !s->done_) s->on_data(CircuitBudget::kDstToSrc, dst_rest);
  return s;
}

void CircuitSplice::wire(int dir) {
  // Each stream's handlers serve both directions it takes part in: reading for `dir`, writing
  // for the opposite one. They own the splice until finish() clears them.
  auto self = shared_from_this();
  int back = 1 - dir;
  Direction& d = dirs_[dir];
  d.from->set_manual_consume(true);
  d.from->set_handlers({
      .on_data = [self, dir](BytesView data) { self->on_data(dir, data); },
      .on_fin =
          [self, dir] {
            self->dirs_[dir].fin_received = true;
            self->forward(dir);
          },
      .on_reset = [self](uint64_t) { self->finish("reset by an end", true); },
      .on_writable = [self, back] { self->forward(back); },
      .on_closed =
          [self, dir] {
            const Direction& x = self->dirs_[dir];
            if (!(x.fin_received && self->dirs_[1 - dir].fin_sent)) self->finish("stream closed", true);
          },
  });
}

void CircuitSplice::on_data(int dir, BytesView data) {
  if (done_) return;
  Direction& d = dirs_[dir];
  size_t allowed = budget_.take(dir, data.size());
  d.pending.append(data.substr(0, allowed));
  forward(dir);
  if (allowed < data.size() || budget_.exhausted()) finish("data limit reached", true);
}

void CircuitSplice::forward(int dir) {
  if (done_) return;
  Direction& d = dirs_[dir];
  if (!d.pending.empty()) {
    size_t took = d.to->write(d.pending);
    if (took > 0) {
      d.pending.erase(0, took);
      d.from->consume(took);  // reopens the sender's window only as far as the receiver took
    }
  }
  if (d.pending.empty() && d.fin_received && !d.fin_sent) {
    d.fin_sent = true;
    d.to->shutdown_write();
    if (dirs_[1 - dir].fin_sent) finish("closed", false);
  }
}

void CircuitSplice::finish(const std::string& reason, bool reset) {
  if (done_) return;
  done_ = true;
  auto keep = shared_from_this();
  deadline_->stop();
  for (Direction& d : dirs_) {
    d.from->set_handlers({.on_data = [](BytesView) {}});
    if (reset) {
      d.from->reset(0);
    }
  }
  auto cb = std::move(closed_);
  closed_ = nullptr;
  if (cb) cb(reason, budget_.bytes(CircuitBudget::kSrcToDst), budget_.bytes(CircuitBudget::kDstToSrc));
}

void CircuitSplice::abort(const std::string& reason) { finish(reason, true); }

}  // namespace punchgate
