#include "transport/send_buffer.hpp"

#include <algorithm>

namespace punchgate {

size_t SendBuffer::append(BytesView data) {
  size_t take = std::min(data.size(), capacity_left());
  size_t done = 0;
  while (done < take) {
    // Coalesce small writes into the last chunk so a vector covers many of them.
    if (chunks_.empty() || chunks_.back().size() >= kChunk) {
      // Full reservation up front: ngtcp2 keeps pointers into sent bytes until they are acked,
      // so a chunk must never reallocate. Untouched reserved pages cost no resident memory.
      chunks_.emplace_back();
      chunks_.back().reserve(kChunk);
    }
    Bytes& last = chunks_.back();
    size_t n = std::min(kChunk - last.size(), take - done);
    last.append(data.data() + done, n);
    done += n;
  }
  end_ += take;
  return take;
}

size_t SendBuffer::unsent_vecs(ngtcp2_vec* vecs, size_t max_vecs) const {
  size_t count = 0;
  uint64_t off = front_offset_;
  for (const Bytes& c : chunks_) {
    if (count == max_vecs) break;
    uint64_t chunk_end = off + c.size();
    if (chunk_end > sent_) {
      size_t skip = sent_ > off ? static_cast<size_t>(sent_ - off) : 0;
      vecs[count].base = reinterpret_cast<uint8_t*>(const_cast<char*>(c.data())) + skip;
      vecs[count].len = c.size() - skip;
      ++count;
    }
    off = chunk_end;
  }
  return count;
}

void SendBuffer::ack(uint64_t offset, uint64_t len) {
  acked_ = std::max(acked_, offset + len);
  while (!chunks_.empty() && front_offset_ + chunks_.front().size() <= acked_) {
    front_offset_ += chunks_.front().size();
    chunks_.pop_front();
  }
}

void SendBuffer::clear() {
  chunks_.clear();
  front_offset_ = acked_ = sent_ = end_;
}

}  // namespace punchgate
