// Unsigned-varint length-prefixed framing, the message framing of identify, kad, relay and dcutr.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <optional>
#include <vector>

namespace punchgate {

// uvarint(payload.size()) || payload.
Bytes frame_uvarint(BytesView payload);
// Appends uvarint(payload.size()) || payload to `out`.
void append_frame_uvarint(Bytes& out, BytesView payload);

// Incremental reader of uvarint-length-prefixed frames. It never holds more than
// max_frame_size + 10 bytes: callers feed, then drain next() until it yields nullopt.
// After any error the reader stays failed.
class UvarintFrameReader {
 public:
  // Room for one whole frame plus its (at most 10-byte) length prefix.
  static constexpr size_t kPrefixAllowance = 10;

  explicit UvarintFrameReader(size_t max_frame_size);

  // Buffers `data`. Error if that would exceed capacity() bytes buffered; nothing is buffered then.
  Status feed(BytesView data);
  // The next complete frame, nullopt when more bytes are needed, or an error for a
  // malformed prefix or a length over max_frame_size (reported as soon as the prefix is read).
  Result<std::optional<Bytes>> next();
  // Feeds all of `data` in pieces that respect the bound, appending every complete frame
  // to `frames`. Returns the first error; frames completed before it are still appended.
  Status feed_all(BytesView data, std::vector<Bytes>& frames);

  size_t max_frame_size() const { return max_frame_; }
  size_t capacity() const { return max_frame_ + kPrefixAllowance; }  // max_frame_ is clamped, no overflow
  size_t buffered() const { return buf_.size() - pos_; }
  // True when no partial frame is buffered (a clean place for the stream to end).
  bool idle() const { return buffered() == 0; }
  // Bytes after the last frame returned by next(), removed from the reader.
  Bytes take_buffered();
  bool failed() const { return failed_; }

 private:
  Error fail(Error e);

  size_t max_frame_;
  Bytes buf_;
  size_t pos_ = 0;  // start of unconsumed bytes in buf_; compacted lazily to keep next() O(frame)
  bool failed_ = false;
  std::string error_;
};

}  // namespace punchgate
