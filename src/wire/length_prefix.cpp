#include "punchgate/wire/length_prefix.hpp"

#include "punchgate/wire/varint.hpp"

#include <algorithm>
#include <cstdint>

namespace punchgate {

Bytes frame_uvarint(BytesView payload) {
  Bytes out;
  append_frame_uvarint(out, payload);
  return out;
}

void append_frame_uvarint(Bytes& out, BytesView payload) {
  out.reserve(out.size() + uvarint_size(payload.size()) + payload.size());
  put_uvarint(out, payload.size());
  out.append(payload);
}

UvarintFrameReader::UvarintFrameReader(size_t max_frame_size)
    : max_frame_(std::min(max_frame_size, SIZE_MAX - kPrefixAllowance)) {}

Error UvarintFrameReader::fail(Error e) {
  failed_ = true;
  error_ = e.message;
  buf_.clear();
  pos_ = 0;
  return e;
}

Status UvarintFrameReader::feed(BytesView data) {
  if (failed_) return Error{error_};
  if (data.size() > capacity() - buffered()) {
    return fail(make_error("frame reader would buffer {} bytes, limit is {}", buffered() + data.size(),
                           capacity()));
  }
  // Compact before growing so the allocation stays within the bound.
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data);
  return {};
}

Result<std::optional<Bytes>> UvarintFrameReader::next() {
  if (failed_) return Error{error_};
  BytesView rest = BytesView(buf_).substr(pos_);
  uint64_t len = 0;
  auto n = get_uvarint(rest, len);
  if (!n) return fail(make_error("bad frame length: {}", n.error().message));
  if (*n == 0) return std::optional<Bytes>{};
  if (len > max_frame_) return fail(make_error("frame of {} bytes exceeds limit of {}", len, max_frame_));
  if (rest.size() - *n < len) return std::optional<Bytes>{};
  Bytes frame(rest.substr(*n, len));
  pos_ += *n + len;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return std::optional<Bytes>(std::move(frame));
}

Status UvarintFrameReader::feed_all(BytesView data, std::vector<Bytes>& frames) {
  while (true) {
    // Drain first so the whole capacity is free for the next piece.
    while (true) {
      auto f = next();
      if (!f) return f.error();
      if (!f->has_value()) break;
      frames.push_back(std::move(**f));
    }
    if (data.empty()) return {};
    size_t take = std::min(data.size(), capacity() - buffered());
    if (take == 0) {
      // Full buffer without a complete frame cannot happen for a valid prefix; guard anyway.
      return fail(make_error("frame reader stuck with {} bytes buffered", buffered()));
    }
    PG_TRY(feed(data.substr(0, take)));
    data.remove_prefix(take);
  }
}

Bytes UvarintFrameReader::take_buffered() {
  Bytes out = buf_.substr(pos_);
  buf_.clear();
  pos_ = 0;
  return out;
}

}  // namespace punchgate
