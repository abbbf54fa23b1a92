#include "transport/secure_mux_session.hpp"

#include "punchgate/host/protocol_ids.hpp"

#include <algorithm>

namespace punchgate {

SecureMuxSession SecureMuxSession::dialer(const Identity& identity, const PeerId& expected_remote, YamuxConfig mux) {
  return SecureMuxSession(true, identity, expected_remote, mux);
}

SecureMuxSession SecureMuxSession::listener(const Identity& identity, YamuxConfig mux) {
  return SecureMuxSession(false, identity, std::nullopt, mux);
}

SecureMuxSession::SecureMuxSession(bool dialer, const Identity& identity, std::optional<PeerId> expected_remote,
                                   YamuxConfig mux)
    : dialer_(dialer),
      handshake_(dialer ? NoiseHandshake::initiator(identity, std::move(expected_remote))
                        : NoiseHandshake::responder(identity)),
      mux_(dialer ? YamuxRole::Client : YamuxRole::Server, mux) {
  if (dialer_) {
    outer_dialer_.emplace(std::vector<std::string>{std::string(kNoiseProtocol)});
    out_ = outer_dialer_->start();
  } else {
    outer_listener_.emplace(std::vector<std::string>{std::string(kNoiseProtocol)});
  }
}

Status SecureMuxSession::fail(Error e) {
  if (phase_ != Phase::Failed) {
    phase_ = Phase::Failed;
    error_ = e.message;
  }
  return e;
}

Status SecureMuxSession::feed(BytesView raw) {
  if (phase_ == Phase::Failed) return make_error("connection upgrade failed earlier: {}", error_);
  if (raw.empty()) return {};
  if (phase_ == Phase::SelectNoise) {
    MultistreamOutcome o = dialer_ ? outer_dialer_->feed(raw) : outer_listener_->feed(raw);
    out_.insert(out_.end(), o.to_send.begin(), o.to_send.end());
    if (o.state == MultistreamState::Failed) return fail(make_error("security negotiation failed: {}", o.error));
    if (o.state == MultistreamState::Pending) return {};
    phase_ = Phase::Handshake;
    if (dialer_) {
      auto first = handshake_.start();
      if (!first) return fail(first.error());
      out_.insert(out_.end(), first->begin(), first->end());
    }
    return o.leftover.empty() ? Status{} : on_handshake(o.leftover);
  }
  if (phase_ == Phase::Handshake) return on_handshake(raw);
  Bytes plain;
  if (Status s = decoder_->decode(raw, plain); !s) {
    // Frames before the bad one are genuine; let them through before failing.
    if (!plain.empty()) (void)feed_plain(plain);
    return fail(make_error("noise transport: {}", s.error().message));
  }
  return feed_plain(plain);
}

Status SecureMuxSession::on_handshake(BytesView raw) {
  auto step = handshake_.feed(raw);
  if (!step) return fail(make_error("noise handshake: {}", step.error().message));
  out_.insert(out_.end(), step->to_send.begin(), step->to_send.end());
  if (!step->session) return {};
  remote_peer_ = step->session->remote_peer;
  encoder_.emplace(std::move(step->session->send));
  decoder_.emplace(std::move(step->session->recv));
  phase_ = Phase::SelectMuxer;
  if (dialer_) {
    inner_dialer_.emplace(std::vector<std::string>{std::string(kYamuxProtocol)});
    if (Status s = encrypt(inner_dialer_->start()); !s) return s;
  } else {
    inner_listener_.emplace(std::vector<std::string>{std::string(kYamuxProtocol)});
  }
  if (step->rest.empty()) return {};
  Bytes plain;
  if (Status s = decoder_->decode(step->rest, plain); !s) {
    return fail(make_error("noise transport: {}", s.error().message));
  }
  return feed_plain(plain);
}

Status SecureMuxSession::feed_plain(BytesView plain) {
  if (plain.empty()) return {};
  if (phase_ == Phase::SelectMuxer) {
    MultistreamOutcome o = dialer_ ? inner_dialer_->feed(plain) : inner_listener_->feed(plain);
    if (Status s = encrypt(o.to_send); !s) return s;
    if (o.state == MultistreamState::Failed) return fail(make_error("muxer negotiation failed: {}", o.error));
    if (o.state == MultistreamState::Pending) return {};
    phase_ = Phase::Ready;
    if (o.leftover.empty()) return {};
    Status s = mux_.feed(o.leftover);
    if (!s) return fail(make_error("yamux: {}", s.error().message));
    return {};
  }
  if (phase_ != Phase::Ready) return make_error("connection upgrade failed earlier: {}", error_);
  if (Status s = mux_.feed(plain); !s) return fail(make_error("yamux: {}", s.error().message));
  return {};
}

Status SecureMuxSession::encrypt(BytesView plain) {
  if (plain.empty()) return {};
  if (Status s = encoder_->encode(plain, out_); !s) return fail(make_error("noise transport: {}", s.error().message));
  return {};
}

void SecureMuxSession::drain_mux_output() {
  // Encrypt one Noise frame's worth at a time, and only while little raw output waits: yamux's
  // own output cap is then what pushes back on writers.
  constexpr size_t kLowWater = 4 * kNoiseMaxPlaintextPerFrame;
  while (mux_.output_size() > 0 && out_.size() - out_head_ < kLowWater && encoder_ && !encoder_->failed()) {
    Bytes chunk = mux_.take_output(kNoiseMaxPlaintextPerFrame);
    if (!encrypt(chunk)) return;
  }
}

Bytes SecureMuxSession::take_output(size_t max) {
  // yamux may hold a Go Away written while failing; send it even then.
  if (phase_ == Phase::Ready || (phase_ == Phase::Failed && encoder_)) drain_mux_output();
  size_t n = std::min(max, out_.size() - out_head_);
  Bytes result(out_.begin() + static_cast<std::ptrdiff_t>(out_head_),
               out_.begin() + static_cast<std::ptrdiff_t>(out_head_ + n));
  out_head_ += n;
  if (out_head_ == out_.size()) {
    out_.clear();
    out_head_ = 0;
  } else if (out_head_ > (1u << 16) && out_head_ * 2 > out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
  return result;
}

size_t SecureMuxSession::pending_output() const {
  return out_.size() - out_head_ + (phase_ == Phase::Ready ? mux_.output_size() : 0);
}

}  // namespace punchgate
