#include "punchgate/host/ping.hpp"

#include <algorithm>

namespace punchgate {

Bytes PingResponder::feed(BytesView data) {
  Bytes out;
  // Complete the held partial payload first, then echo whole payloads straight from `data`.
  if (!partial_.empty()) {
    size_t take = std::min(data.size(), kPingPayloadSize - partial_.size());
    partial_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (partial_.size() < kPingPayloadSize) return out;
    out = std::move(partial_);
    partial_.clear();
  }
  size_t whole = data.size() - data.size() % kPingPayloadSize;
  out.append(data.substr(0, whole));
  partial_.assign(data.substr(whole));
  return out;
}

Bytes PingInitiator::next_payload(const RandomSource& random, Clock::time_point sent_at) {
  Bytes payload(kPingPayloadSize, '\0');
  random(std::span<uint8_t>(reinterpret_cast<uint8_t*>(payload.data()), payload.size()));
  sent_.push_back(Sent{payload, sent_at});
  return payload;
}

Result<std::vector<PingInitiator::Clock::duration>> PingInitiator::feed(BytesView data, Clock::time_point now) {
  if (failed_) return make_error("ping stream already failed");
  std::vector<Clock::duration> rtts;
  // Compared as bytes arrive, so nothing beyond the current payload is ever buffered.
  while (!data.empty()) {
    if (sent_.empty()) {
      failed_ = true;
      return make_error("ping echo of {} bytes with no ping outstanding", data.size());
    }
    const Sent& front = sent_.front();
    size_t take = std::min(data.size(), kPingPayloadSize - matched_);
    if (data.substr(0, take) != BytesView(front.payload).substr(matched_, take)) {
      failed_ = true;
      return make_error("ping echo does not match the payload sent");
    }
    matched_ += take;
    data.remove_prefix(take);
    if (matched_ == kPingPayloadSize) {
      rtts.push_back(now - front.at);
      sent_.pop_front();
      matched_ = 0;
    }
  }
  return rtts;
}

}  // namespace punchgate
