#include "holepunch/punch_session.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace punchgate {

namespace {

PunchCommand cmd(PunchCommand::Kind k) {
  PunchCommand c;
  c.kind = k;
  return c;
}

PunchCommand timer(PunchTimer t, uint64_t ms) {
  PunchCommand c = cmd(PunchCommand::Kind::StartTimer);
  c.timer = t;
  c.ms = ms;
  return c;
}

PunchCommand with_addrs(PunchCommand::Kind k, std::vector<Multiaddr> addrs, size_t count = 0) {
  PunchCommand c = cmd(k);
  c.addrs = std::move(addrs);
  c.count = count;
  return c;
}

PunchCommand text(PunchCommand::Kind k, std::string t) {
  PunchCommand c = cmd(k);
  c.text = std::move(t);
  return c;
}

}  // namespace

PunchSession::PunchSession(Role role, PunchParams params, std::vector<Multiaddr> our_addrs, NatMapping our_mapping,
                           uint64_t now_ms)
    : role_(role), params_(params), our_mapping_(our_mapping), started_ms_(now_ms) {
  if (role_ == Role::Initiator) {
    init_.emplace(std::move(our_addrs));
  } else {
    resp_.emplace(std::move(our_addrs));
  }
}

std::vector<PunchCommand> PunchSession::start() {
  if (role_ == Role::Initiator) return {};
  return {timer(PunchTimer::Reply, params_.reply_timeout_ms)};
}

std::vector<PunchCommand> PunchSession::handle(const PunchEvent& ev) {
  Out out;
  if (finished()) return out;
  switch (ev.kind) {
    case PunchEvent::Kind::StreamReady:
      if (role_ == Role::Initiator && awaiting_stream_) {
        awaiting_stream_ = false;
        stream_ended_ = false;
        answered_on_stream_ = false;
        send_connect(ev.now_ms, out);
      }
      break;
    case PunchEvent::Kind::Data:
      on_data(ev.data, ev.now_ms, out);
      break;
    case PunchEvent::Kind::TimerFired:
      on_timer(ev.timer, ev.now_ms, out);
      break;
    case PunchEvent::Kind::DirectConnection:
      succeed(ev.now_ms, out);
      break;
    case PunchEvent::Kind::StreamEnded:
      // A punch under way runs to its own deadline; between attempts the exchange is over.
      stream_ended_ = true;
      if (phase_ == Phase::Punching) break;
      // Our next CONNECT crossed the end of a stream the peer had answered on: it handles one
      // exchange per stream (go-libp2p, js-libp2p), so that attempt goes on a new one.
      if (role_ == Role::Initiator && phase_ == Phase::Exchanging && answered_on_stream_ && !awaiting_stream_) {
        reopen(out);
        break;
      }
      if (attempt_ == 0) {
        fail(role_ == Role::Initiator ? "peer closed the dcutr stream" : "initiator closed the dcutr stream", out);
      } else {
        fail(fmt::format("no direct connection after {} attempts", attempt_), out);
      }
      break;
  }
  return out;
}

void PunchSession::send_connect(uint64_t now, Out& out) {
  Bytes connect = init_->connect(now);
  if (connect.empty()) return fail(fmt::format("no direct connection after {} attempts", attempt_), out);
  PunchCommand w = cmd(PunchCommand::Kind::Write);
  w.bytes = std::move(connect);
  out.push_back(std::move(w));
  phase_ = Phase::Exchanging;
  out.push_back(timer(PunchTimer::Reply, params_.reply_timeout_ms));
}

void PunchSession::reopen(Out& out) {
  init_->new_stream();
  awaiting_stream_ = true;
  stream_ended_ = false;
  answered_on_stream_ = false;
  phase_ = Phase::Exchanging;
  out.push_back(timer(PunchTimer::Reply, params_.reply_timeout_ms));
  out.push_back(cmd(PunchCommand::Kind::OpenStream));  // last: it may answer at once
}

void PunchSession::on_data(BytesView data, uint64_t now, Out& out) {
  Result<DcutrStep> step = init_ ? init_->feed(data, now) : resp_->feed(data);
  if (!step) return fail("bad dcutr message: " + step.error().message, out);
  if (!step->to_send.empty()) {
    PunchCommand w = cmd(PunchCommand::Kind::Write);
    w.bytes = std::move(step->to_send);
    out.push_back(std::move(w));
  }
  if (!step->punch) return;
  plan_ = std::move(*step->punch);
  attempt_ = plan_.attempt;
  out.push_back(cmd(PunchCommand::Kind::StopTimers));
  std::vector<std::string> addrs;
  for (const Multiaddr& a : plan_.remote_addrs) addrs.push_back(a.to_string());
  if (role_ == Role::Initiator) {
    answered_on_stream_ = true;
    out.push_back(text(PunchCommand::Kind::Log,
                       fmt::format("hole punch sync sent attempt={} rtt_ms={} peer_addrs=[{}]", attempt_,
                                   plan_.rtt_ms, fmt::join(addrs, ","))));
  } else {
    out.push_back(text(PunchCommand::Kind::Log, fmt::format("hole punch sync received attempt={} peer_addrs=[{}]",
                                                            attempt_, fmt::join(addrs, ","))));
  }
  if (role_ == Role::Responder) return begin_punch(now, out);
  // Initiator: half the round trip, so both sides' first packets cross at about the same time.
  phase_ = Phase::Punching;
  outcome_ = fmt::format("hole punch in progress (attempt {})", attempt_);
  out.push_back(timer(PunchTimer::Delay, plan_.delay_ms));
}

void PunchSession::begin_punch(uint64_t, Out& out) {
  phase_ = Phase::Punching;
  outcome_ = fmt::format("hole punch in progress (attempt {})", attempt_);
  if (plan_.remote_addrs.empty()) {
    out.push_back(text(PunchCommand::Kind::Log,
                       fmt::format("hole punch attempt {} has no address to punch to (the peer offered none)", attempt_)));
  }
  // The responder dials (it becomes the QUIC client); the initiator sprays so the responder's
  // packets find its NAT open, and dials as well (see hole_puncher.hpp).
  out.push_back(with_addrs(PunchCommand::Kind::Dial, plan_.remote_addrs));
  if (role_ == Role::Initiator) out.push_back(with_addrs(PunchCommand::Kind::StartSpray, plan_.remote_addrs));
  if (params_.hard_nat) out.push_back(timer(PunchTimer::HardNat, params_.hard_nat_delay_ms));
  out.push_back(timer(PunchTimer::Attempt, params_.attempt_timeout_ms));
}

void PunchSession::on_timer(PunchTimer t, uint64_t now, Out& out) {
  switch (t) {
    case PunchTimer::Reply:
      if (phase_ != Phase::Exchanging && phase_ != Phase::Waiting) return;
      if (attempt_ > 0) return fail(fmt::format("no direct connection after {} attempts", attempt_), out);
      return fail(role_ == Role::Initiator ? "no CONNECT reply in time" : "no CONNECT from the initiator in time", out);
    case PunchTimer::Delay:
      if (role_ == Role::Initiator && phase_ == Phase::Punching) begin_punch(now, out);
      return;
    case PunchTimer::HardNat:
      if (phase_ == Phase::Punching) hard_nat(out);
      return;
    case PunchTimer::Attempt:
      if (phase_ == Phase::Punching) attempt_over(now, out);
      return;
  }
}

void PunchSession::hard_nat(Out& out) {
  std::string peer_ip;
  const bool peer_dependent = looks_endpoint_dependent(plan_.remote_addrs, &peer_ip);
  const bool we_dependent = our_mapping_ == NatMapping::EndpointDependent;
  if (we_dependent && peer_dependent) {
    if (attempt_ == 1) {
      out.push_back(text(PunchCommand::Kind::Log,
                         "hard nat punch skipped reason=\"both sides have endpoint-dependent mapping\""));
    }
    return;
  }
  if (we_dependent) {
    // Many fresh mappings towards the peer's public addresses: one may meet its probes.
    std::vector<Multiaddr> targets;
    for (const Multiaddr& a : plan_.remote_addrs) {
      auto ep = quic_endpoint_of(a);
      if (ep && !ep->is_dns && is_public_ip(ep->host)) targets.push_back(a);
    }
    if (targets.empty()) return;
    out.push_back(text(PunchCommand::Kind::Log,
                       fmt::format("hard nat punch attempt={} role=sockets sockets={} targets={}", attempt_,
                                   params_.hard_nat_sockets, targets.size())));
    out.push_back(with_addrs(PunchCommand::Kind::DialFresh, std::move(targets), params_.hard_nat_sockets));
    return;
  }
  if (peer_dependent) {
    out.push_back(text(PunchCommand::Kind::Log, fmt::format("hard nat punch attempt={} role=probes probes={} ip={}",
                                                            attempt_, params_.hard_nat_probes, peer_ip)));
    PunchCommand p = cmd(PunchCommand::Kind::SendProbes);
    p.ip = peer_ip;
    p.count = params_.hard_nat_probes;
    out.push_back(std::move(p));
  }
}

void PunchSession::attempt_over(uint64_t now, Out& out) {
  out.push_back(cmd(PunchCommand::Kind::StopSpray));
  out.push_back(cmd(PunchCommand::Kind::AbortFresh));
  out.push_back(cmd(PunchCommand::Kind::StopTimers));
  out.push_back(text(PunchCommand::Kind::Log, fmt::format("hole punch attempt failed attempt={}", attempt_)));
  if (role_ == Role::Initiator) {
    if (!init_->can_retry()) return fail(fmt::format("no direct connection after {} attempts", attempt_), out);
    // The peer ended the stream after its side of the attempt: the next one needs a new stream.
    if (stream_ended_) return reopen(out);
    return send_connect(now, out);
  }
  // The initiator decides whether there is another attempt: wait for its next CONNECT.
  if (stream_ended_) return fail(fmt::format("no direct connection after {} attempts", attempt_), out);
  phase_ = Phase::Waiting;
  outcome_ = fmt::format("hole punch attempt {} failed", attempt_);
  out.push_back(timer(PunchTimer::Reply, params_.reply_timeout_ms));
}

void PunchSession::succeed(uint64_t now, Out& out) {
  out.push_back(cmd(PunchCommand::Kind::StopTimers));
  out.push_back(cmd(PunchCommand::Kind::StopSpray));
  out.push_back(cmd(PunchCommand::Kind::AbortFresh));
  phase_ = Phase::Succeeded;
  PunchCommand s = cmd(PunchCommand::Kind::Succeeded);
  s.attempt = std::max<size_t>(attempt_, 1);
  s.elapsed_ms = now - started_ms_;
  outcome_ = fmt::format("hole punched (attempt {}, {} ms)", s.attempt, s.elapsed_ms);
  out.push_back(std::move(s));
}

void PunchSession::fail(const std::string& reason, Out& out) {
  out.push_back(cmd(PunchCommand::Kind::StopTimers));
  out.push_back(cmd(PunchCommand::Kind::StopSpray));
  out.push_back(cmd(PunchCommand::Kind::AbortFresh));
  phase_ = Phase::Failed;
  outcome_ = "hole punch failed: " + reason;
  out.push_back(text(PunchCommand::Kind::Failed, reason));
}

}  // namespace punchgate
