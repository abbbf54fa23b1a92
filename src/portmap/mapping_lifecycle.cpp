#include "portmap/mapping_lifecycle.hpp"

#include <algorithm>
#include <iterator>

namespace punchgate {

const char* to_string(MapProtocol p) { return p == MapProtocol::NatPmp ? "natpmp" : "upnp"; }

namespace {

using Kind = MappingCommand::Kind;
using NoticeKind = MappingCommand::NoticeKind;

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

MappingLifecycle::MappingLifecycle(uint16_t internal_port, MappingParams params)
    : internal_port_(internal_port), params_(params) {}

std::vector<MappingCommand> MappingLifecycle::start(uint64_t) {
  std::vector<MappingCommand> out;
  if (phase_ != Phase::Idle) return out;
  request_map(out, 0, internal_port_);
  return out;
}

void MappingLifecycle::request_map(std::vector<MappingCommand>& out, size_t order_index, uint16_t external_port,
                                   bool reuse_gateway) {
  phase_ = Phase::Mapping;
  order_index_ = order_index;
  asked_port_ = external_port;
  wake_at_.reset();
  MappingCommand c;
  c.kind = Kind::Map;
  c.protocol = kOrder[order_index];
  c.internal_port = internal_port_;
  c.external_port = external_port;
  c.lifetime_s = params_.lifetime_s;
  c.reuse_gateway = reuse_gateway;
  out.push_back(std::move(c));
}

void MappingLifecycle::request_renewal(std::vector<MappingCommand>& out) {
  phase_ = Phase::Renewing;
  wake_at_.reset();
  MappingCommand c;
  c.kind = Kind::Map;
  c.protocol = held_->protocol;
  c.internal_port = internal_port_;
  c.external_port = held_->external_port;
  c.lifetime_s = params_.lifetime_s;
  c.renewal = true;
  c.reuse_gateway = true;
  out.push_back(std::move(c));
}

void MappingLifecycle::request_unmap(std::vector<MappingCommand>& out) {
  phase_ = Phase::Unmapping;
  wake_at_.reset();
  MappingCommand c;
  c.kind = Kind::Unmap;
  c.protocol = held_->protocol;
  c.internal_port = internal_port_;
  c.external_port = held_->external_port;
  c.external_ip = held_->external_ip;
  out.push_back(std::move(c));
}

MappingCommand MappingLifecycle::notice(NoticeKind kind) const {
  MappingCommand c;
  c.kind = Kind::Notice;
  c.notice = kind;
  c.internal_port = internal_port_;
  if (held_) {
    c.protocol = held_->protocol;
    c.external_ip = held_->external_ip;
    c.external_port = held_->external_port;
    c.lifetime_s = held_->lifetime_s;
  }
  return c;
}

std::vector<MappingCommand> MappingLifecycle::on_outcome(const MapOutcome& o, uint64_t now_ms) {
  std::vector<MappingCommand> out;
  switch (phase_) {
    case Phase::Mapping:
      if (o.ok) {
        on_map_success(out, o, now_ms);
        if (stopping_) {
          out.push_back(MappingCommand{.kind = Kind::Withdraw});
          request_unmap(out);
        }
      } else if (stopping_) {
        finish(out);
      } else {
        on_first_map_failure(out, o, now_ms);
      }
      break;
    case Phase::Renewing:
      if (o.ok) on_map_success(out, o, now_ms);
      else if (!stopping_) on_renewal_failure(out, o, now_ms);
      if (stopping_ && held_) {
        // The renewal may have failed, yet the gateway may still hold the old mapping.
        out.push_back(MappingCommand{.kind = Kind::Withdraw});
        request_unmap(out);
      }
      break;
    case Phase::Unmapping: {
      MappingCommand n = notice(o.ok ? NoticeKind::Removed : NoticeKind::RemoveFailed);
      n.reason = o.error;
      out.push_back(std::move(n));
      finish(out);
      break;
    }
    case Phase::Idle:
    case Phase::Mapped:
    case Phase::Waiting:
    case Phase::Stopped:
      break;  // nothing was in flight
  }
  return out;
}

void MappingLifecycle::on_map_success(std::vector<MappingCommand>& out, const MapOutcome& o, uint64_t now_ms) {
  const MapProtocol protocol = phase_ == Phase::Renewing ? held_->protocol : kOrder[order_index_];
  std::optional<Held> previous = held_;
  held_ = Held{protocol, o.external_ip, o.external_port, o.lifetime_s, std::nullopt};
  uint64_t renew_in = params_.permanent_recheck_ms;
  if (o.lifetime_s > 0) {
    held_->expires_at_ms = now_ms + uint64_t{o.lifetime_s} * 1000;
    renew_in = uint64_t{o.lifetime_s} * 500;  // half the lease: time for a few retries
  }
  phase_ = Phase::Mapped;
  wake_at_ = now_ms + renew_in;
  retry_ms_ = 0;
  renew_retry_ms_ = 0;
  renew_failures_ = 0;
  unavailable_reported_ = false;
  failures_.clear();
  last_error_.clear();
  if (!previous) {
    out.push_back(notice(NoticeKind::Added));
  } else if (previous->external_ip != held_->external_ip || previous->external_port != held_->external_port) {
    out.push_back(notice(NoticeKind::Changed));
  } else {
    out.push_back(notice(NoticeKind::Renewed));
    return;  // same address: nothing to advertise anew
  }
  MappingCommand adv;
  adv.kind = Kind::Advertise;
  adv.protocol = protocol;
  adv.internal_port = internal_port_;
  adv.external_ip = held_->external_ip;
  adv.external_port = held_->external_port;
  out.push_back(std::move(adv));
}

void MappingLifecycle::on_first_map_failure(std::vector<MappingCommand>& out, const MapOutcome& o, uint64_t now_ms) {
  if (o.port_taken && asked_port_ != 0) {
    // Someone else holds our port on the gateway: any external port will do, same gateway.
    request_map(out, order_index_, 0, true);
    return;
  }
  failures_.push_back(std::string(to_string(kOrder[order_index_])) + ": " + o.error);
  if (order_index_ + 1 < std::size(kOrder)) {
    request_map(out, order_index_ + 1, internal_port_);
    return;
  }
  last_error_ = join(failures_);
  failures_.clear();
  retry_ms_ = retry_ms_ == 0 ? params_.retry_first_ms : std::min(retry_ms_ * 2, params_.retry_max_ms);
  phase_ = Phase::Waiting;
  wake_at_ = now_ms + retry_ms_;
  MappingCommand n = notice(unavailable_reported_ ? NoticeKind::StillUnavailable : NoticeKind::Unavailable);
  unavailable_reported_ = true;
  n.reason = last_error_;
  n.retry_in_ms = retry_ms_;
  out.push_back(std::move(n));
}

void MappingLifecycle::on_renewal_failure(std::vector<MappingCommand>& out, const MapOutcome& o, uint64_t now_ms) {
  ++renew_failures_;
  last_error_ = std::string(to_string(held_->protocol)) + ": " + o.error;
  if (o.port_taken) return lose(out, "the external port was given to another client: " + o.error);
  if (held_->expires_at_ms && now_ms >= *held_->expires_at_ms) return lose(out, "lease expired: " + o.error);
  if (!held_->expires_at_ms && renew_failures_ >= params_.permanent_failures_lost) {
    return lose(out, "gateway no longer confirms it: " + o.error);
  }
  renew_retry_ms_ = renew_retry_ms_ == 0 ? params_.renew_retry_first_ms : renew_retry_ms_ * 2;
  uint64_t cap = params_.permanent_recheck_ms;
  // A lease: keep trying more often as its end comes closer, never waiting past it.
  if (held_->expires_at_ms) cap = std::max<uint64_t>((*held_->expires_at_ms - now_ms) / 2, 1000);
  renew_retry_ms_ = std::min(renew_retry_ms_, cap);
  phase_ = Phase::Mapped;
  wake_at_ = now_ms + renew_retry_ms_;
  MappingCommand n = notice(NoticeKind::RenewFailed);
  n.reason = o.error;
  n.retry_in_ms = renew_retry_ms_;
  out.push_back(std::move(n));
}

void MappingLifecycle::lose(std::vector<MappingCommand>& out, const std::string& why) {
  MappingCommand n = notice(NoticeKind::Lost);
  n.reason = why;
  out.push_back(std::move(n));
  out.push_back(MappingCommand{.kind = Kind::Withdraw});
  held_.reset();
  renew_failures_ = 0;
  renew_retry_ms_ = 0;
  // A fresh round from the first protocol: the gateway may have rebooted or been replaced.
  request_map(out, 0, internal_port_);
}

std::vector<MappingCommand> MappingLifecycle::on_timer(uint64_t now_ms) {
  std::vector<MappingCommand> out;
  if (!wake_at_ || now_ms < *wake_at_) return out;
  wake_at_.reset();
  if (phase_ == Phase::Waiting) {
    request_map(out, 0, internal_port_);
  } else if (phase_ == Phase::Mapped) {
    if (held_->expires_at_ms && now_ms >= *held_->expires_at_ms) {
      lose(out, "lease expired: " + (last_error_.empty() ? std::string("not renewed in time") : last_error_));
    } else {
      request_renewal(out);
    }
  }
  return out;
}

std::vector<MappingCommand> MappingLifecycle::stop(uint64_t) {
  std::vector<MappingCommand> out;
  if (stopping_) return out;
  stopping_ = true;
  wake_at_.reset();
  switch (phase_) {
    case Phase::Idle:
    case Phase::Waiting:
      finish(out);
      break;
    case Phase::Mapped:
      out.push_back(MappingCommand{.kind = Kind::Withdraw});
      request_unmap(out);
      break;
    case Phase::Mapping:
    case Phase::Renewing:
    case Phase::Unmapping:
      break;  // the outcome of the request in flight decides
    case Phase::Stopped:
      break;
  }
  return out;
}

void MappingLifecycle::finish(std::vector<MappingCommand>& out) {
  phase_ = Phase::Stopped;
  held_.reset();
  wake_at_.reset();
  out.push_back(MappingCommand{.kind = Kind::Done});
}

}  // namespace punchgate
