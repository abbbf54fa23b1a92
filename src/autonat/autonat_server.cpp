#include "autonat/autonat_server.hpp"

#include "holepunch/nat_mapping.hpp"

#include <algorithm>

namespace punchgate {

namespace {

AutonatAdmission refuse(AutonatStatus status, std::string reason) {
  AutonatAdmission a;
  a.answer = AutonatMessage::response(status, reason);
  a.reason = std::move(reason);
  return a;
}

// The IP of a direct QUIC address (canonical text, as Multiaddr writes it), or nullopt.
std::optional<std::string> quic_ip(const Multiaddr& addr) {
  auto ep = quic_endpoint_of(addr);
  if (!ep || ep->is_dns) return std::nullopt;
  return ep->host;
}

}  // namespace

AutonatServer::AutonatServer(AutonatServerConfig config) : config_(config) {}

void AutonatServer::prune(uint64_t now_ms) {
  auto old = [&](uint64_t t) { return t + config_.window_ms <= now_ms; };
  while (!admitted_.empty() && old(admitted_.front())) admitted_.pop_front();
  for (auto it = admitted_by_peer_.begin(); it != admitted_by_peer_.end();) {
    auto& q = it->second;
    while (!q.empty() && old(q.front())) q.pop_front();
    it = q.empty() ? admitted_by_peer_.erase(it) : std::next(it);
  }
}

AutonatAdmission AutonatServer::admit(const AutonatRequestContext& ctx, BytesView message, uint64_t now_ms) {
  if (ctx.relayed) return refuse(AutonatStatus::DialRefused, "request came through a relay");
  auto msg = AutonatMessage::decode(message);
  if (!msg) return refuse(AutonatStatus::BadRequest, "malformed request: " + msg.error().message);
  if (msg->type != AutonatType::Dial) return refuse(AutonatStatus::BadRequest, "expected a DIAL message");
  if (!msg->dial || !msg->dial->peer) return refuse(AutonatStatus::BadRequest, "DIAL without peer info");
  const AutonatPeerInfo& peer = *msg->dial->peer;
  if (!peer.id || *peer.id != ctx.requester.bytes())
    return refuse(AutonatStatus::BadRequest, "peer id differs from the requester's");

  prune(now_ms);
  if (in_flight_.size() >= config_.max_in_flight)
    return refuse(AutonatStatus::DialRefused, "too many dial-backs in progress");
  auto mine = admitted_by_peer_.find(ctx.requester);
  if (mine != admitted_by_peer_.end() && mine->second.size() >= config_.max_per_peer_window)
    return refuse(AutonatStatus::DialRefused, "rate limit for this peer reached");
  if (admitted_.size() >= config_.max_per_window) return refuse(AutonatStatus::DialRefused, "rate limit reached");

  auto observed_ip = quic_ip(ctx.observed);
  if (!observed_ip) return refuse(AutonatStatus::DialRefused, "the request's source is not a direct QUIC address");
  if (!config_.allow_private_ips && !is_public_ip(*observed_ip))
    return refuse(AutonatStatus::DialRefused, "the request came from a non-public IP " + *observed_ip);
  std::vector<std::string> own_ips;
  for (const Multiaddr& a : ctx.own_addrs) {
    if (auto ip = quic_ip(a)) own_ips.push_back(*ip);
  }

  AutonatAdmission out;
  for (const Bytes& raw : peer.addrs) {
    auto parsed = Multiaddr::from_bytes(raw);
    if (!parsed) {
      out.skipped.emplace_back("<invalid>", "not a multiaddr");
      continue;
    }
    auto skip = [&](std::string why) { out.skipped.emplace_back(parsed->to_string(), std::move(why)); };
    if (parsed->is_relayed()) {
      skip("relayed");
      continue;
    }
    if (auto id = parsed->peer_id(); id && *id != ctx.requester) {
      skip("names another peer");
      continue;
    }
    Multiaddr bare = parsed->without_peer_id();
    auto ep = quic_endpoint_of(bare);
    if (!ep) {
      skip("not /udp/…/quic-v1");
      continue;
    }
    if (ep->is_dns) {
      skip("a DNS name");
      continue;
    }
    if (ep->host != *observed_ip) {
      skip("IP differs from the observed " + *observed_ip);
      continue;
    }
    if (std::find(own_ips.begin(), own_ips.end(), ep->host) != own_ips.end()) {
      skip("one of our own IPs");
      continue;
    }
    if (ep->port == 0) {
      skip("port 0");
      continue;
    }
    if (std::find(out.dial.begin(), out.dial.end(), bare) != out.dial.end()) {
      skip("duplicate");
      continue;
    }
    if (out.dial.size() == config_.max_dial_addrs) {
      skip("over the limit of " + std::to_string(config_.max_dial_addrs) + " addresses");
      continue;
    }
    out.dial.push_back(std::move(bare));
  }
  if (out.dial.empty()) {
    AutonatAdmission r = refuse(AutonatStatus::DialRefused, "no dialable address on the observed IP " + *observed_ip);
    r.skipped = std::move(out.skipped);
    return r;
  }
  out.job = next_job_++;
  in_flight_.insert(out.job);
  admitted_.push_back(now_ms);
  admitted_by_peer_[ctx.requester].push_back(now_ms);
  return out;
}

void AutonatServer::finish(uint64_t job) { in_flight_.erase(job); }

// ---- DialBackTally ----

DialBackTally::DialBackTally(std::vector<Multiaddr> addrs) : pending_(std::move(addrs)) {}

bool DialBackTally::take(const Multiaddr& addr) {
  auto it = std::find(pending_.begin(), pending_.end(), addr);
  if (it == pending_.end()) return false;
  pending_.erase(it);
  return true;
}

std::optional<AutonatMessage> DialBackTally::on_connected(const Multiaddr& addr) {
  if (decided_ || !take(addr)) return std::nullopt;
  decided_ = true;
  return AutonatMessage::response(AutonatStatus::Ok, "dial back succeeded", addr);
}

std::optional<AutonatMessage> DialBackTally::on_failed(const Multiaddr& addr, const std::string& error, bool local) {
  if (decided_ || !take(addr)) return std::nullopt;
  if (!local) ++dial_errors_;
  last_error_ = error;
  if (!pending_.empty()) return std::nullopt;
  decided_ = true;
  if (dial_errors_ == 0) return AutonatMessage::response(AutonatStatus::InternalError, "cannot dial: " + last_error_);
  return AutonatMessage::response(AutonatStatus::DialError, "dial back failed: " + last_error_);
}

std::optional<AutonatMessage> DialBackTally::on_timeout() {
  if (decided_) return std::nullopt;
  decided_ = true;
  pending_.clear();
  return AutonatMessage::response(AutonatStatus::DialError, "dial back timed out");
}

}  // namespace punchgate
