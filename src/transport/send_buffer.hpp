// Outgoing stream bytes kept until the peer acknowledges them (ngtcp2 does not copy stream data).
// Offsets are stream offsets: [acked, sent) is in flight, [sent, end) not yet handed to ngtcp2.
#pragma once

#include "punchgate/core/bytes.hpp"

#include <ngtcp2/ngtcp2.h>

#include <cstdint>
#include <deque>

namespace punchgate {

class SendBuffer {
 public:
  explicit SendBuffer(size_t capacity) : capacity_(capacity) {}

  size_t capacity_left() const { return buffered() >= capacity_ ? 0 : capacity_ - buffered(); }
  size_t buffered() const { return static_cast<size_t>(end_ - acked_); }
  size_t unsent() const { return static_cast<size_t>(end_ - sent_); }
  uint64_t end_offset() const { return end_; }

  // Appends up to capacity_left() bytes; returns how many were taken.
  size_t append(BytesView data);
  // Fills up to max_vecs entries describing unsent bytes; returns the count.
  size_t unsent_vecs(ngtcp2_vec* vecs, size_t max_vecs) const;
  void mark_sent(size_t n) { sent_ += n; }
  // The peer acknowledged [offset, offset+len): drops everything acknowledged from the front.
  void ack(uint64_t offset, uint64_t len);
  void clear();

 private:
  static constexpr size_t kChunk = 64 * 1024;
  size_t capacity_;
  std::deque<Bytes> chunks_;  // chunks_.front() starts at front_offset_
  uint64_t front_offset_ = 0;
  uint64_t acked_ = 0;
  uint64_t sent_ = 0;
  uint64_t end_ = 0;
};

}  // namespace punchgate
