#include "relay/hop_server.hpp"

#include "relay/reservation_voucher.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace punchgate {

HopServer::HopServer(const Identity& relay_identity, RelayLimits limits)
    : relay_(relay_identity), limits_(limits) {}

HopReserveResult HopServer::reserve(const PeerId& peer, const std::vector<Multiaddr>& relay_addrs, uint64_t now_unix) {
  auto it = reservations_.find(peer);
  if (it == reservations_.end()) {
    // Expired slots would otherwise refuse live peers until the next expire() sweep.
    if (reservations_.size() >= limits_.max_reservations)
      std::erase_if(reservations_, [now_unix](const auto& r) { return r.second <= now_unix; });
    if (reservations_.size() >= limits_.max_reservations)
      return HopReserveResult{hop_status_reply(CircuitStatus::ReservationRefused), false, 0};
  }

  const uint64_t expire = now_unix + limits_.reservation_ttl_s;
  reservations_[peer] = expire;

  CircuitReservation reservation;
  reservation.expire = expire;
  for (const Multiaddr& addr : relay_addrs) {
    if (reservation.addrs.size() >= kMaxCircuitAddrs) break;
    // A relayed address cannot carry another circuit; the caller should not list one anyway.
    if (addr.empty() || addr.is_relayed()) continue;
    reservation.addrs.push_back(addr.without_peer_id().with_peer_id(relay_.peer_id()).to_bytes());
  }
  reservation.voucher = make_signed_voucher(relay_, peer, expire);

  HopReserveResult result;
  result.reply.type = HopMessageType::StatusReply;
  result.reply.reservation = std::move(reservation);
  result.reply.limit = circuit_limit(limits_);
  result.reply.status = CircuitStatus::Ok;
  // Peers read at most kMaxCircuitMessageSize; the addresses are what may be left out.
  while (result.reply.encode().size() > kMaxCircuitMessageSize && !result.reply.reservation->addrs.empty())
    result.reply.reservation->addrs.pop_back();
  result.accepted = true;
  result.expire = expire;
  return result;
}

HopConnectResult HopServer::connect(const PeerId& src, const HopMessage& msg, uint64_t now_unix) {
  auto refuse = [](CircuitStatus s) { return HopConnectResult{std::nullopt, hop_status_reply(s)}; };

  if (!msg.peer) return refuse(CircuitStatus::MalformedMessage);
  auto dst = PeerId::from_bytes(msg.peer->id);
  if (!dst) return refuse(CircuitStatus::MalformedMessage);
  if (*dst == src) return refuse(CircuitStatus::PermissionDenied);
  if (!has_reservation(*dst, now_unix)) return refuse(CircuitStatus::NoReservation);
  if (circuits_.size() >= limits_.max_circuits || circuit_count(src) >= limits_.max_circuits_per_peer ||
      circuit_count(*dst) >= limits_.max_circuits_per_peer)
    return refuse(CircuitStatus::ResourceLimitExceeded);

  const uint64_t id = next_circuit_id_++;
  circuits_.emplace(id, Circuit{src, *dst});
  ++circuits_per_peer_[src];
  ++circuits_per_peer_[*dst];
  return HopConnectResult{HopConnectAdmission{id, src, std::move(dst).value(), circuit_limit(limits_)}, std::nullopt};
}

void HopServer::release_circuit_of(const PeerId& peer) {
  auto it = circuits_per_peer_.find(peer);
  if (it == circuits_per_peer_.end()) return;
  if (--it->second == 0) circuits_per_peer_.erase(it);
}

void HopServer::circuit_closed(uint64_t circuit_id) {
  auto it = circuits_.find(circuit_id);
  if (it == circuits_.end()) return;
  release_circuit_of(it->second.src);
  release_circuit_of(it->second.dst);
  circuits_.erase(it);
}

std::vector<PeerId> HopServer::expire(uint64_t now_unix) {
  std::vector<PeerId> dropped;
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    if (it->second <= now_unix) {
      dropped.push_back(it->first);
      it = reservations_.erase(it);
    } else {
      ++it;
    }
  }
  return dropped;
}

bool HopServer::peer_disconnected(const PeerId& peer) { return reservations_.erase(peer) > 0; }

bool HopServer::has_reservation(const PeerId& peer, uint64_t now_unix) const {
  auto it = reservations_.find(peer);
  return it != reservations_.end() && it->second > now_unix;
}

size_t HopServer::circuit_count(const PeerId& peer) const {
  auto it = circuits_per_peer_.find(peer);
  return it == circuits_per_peer_.end() ? 0 : it->second;
}

size_t CircuitBudget::take(int direction, size_t n) {
  if (direction != kSrcToDst && direction != kDstToSrc) return 0;
  uint64_t& used = used_[static_cast<size_t>(direction)];
  uint64_t allowed = n;
  if (limit_ != 0) allowed = std::min<uint64_t>(n, limit_ > used ? limit_ - used : 0);
  // Saturates rather than wraps; only an unlimited circuit could get there.
  used = allowed > std::numeric_limits<uint64_t>::max() - used ? std::numeric_limits<uint64_t>::max() : used + allowed;
  return static_cast<size_t>(allowed);
}

bool CircuitBudget::exhausted() const {
  return limit_ != 0 && (used_[0] >= limit_ || used_[1] >= limit_);
}

uint64_t CircuitBudget::bytes(int direction) const {
  if (direction != kSrcToDst && direction != kDstToSrc) return 0;
  return used_[static_cast<size_t>(direction)];
}

}  // namespace punchgate
