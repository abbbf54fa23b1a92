#include "crypto/noise_transport.hpp"

#include <algorithm>
#include <cassert>

namespace punchgate {

void append_noise_frame(Bytes& out, BytesView message) {
  assert(message.size() <= kNoiseMaxMessageLen);
  out.push_back(static_cast<char>((message.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(message.size() & 0xff));
  out.append(message);
}

// ---- NoiseFrameReader ----

std::optional<BytesView> NoiseFrameReader::next(BytesView& data) {
  if (frame_done_) {
    body_.clear();
    frame_done_ = false;
  }
  while (header_have_ < kNoiseFrameHeaderLen) {
    if (data.empty()) return std::nullopt;
    header_[header_have_++] = static_cast<uint8_t>(data.front());
    data.remove_prefix(1);
  }
  const size_t len = (size_t{header_[0]} << 8) | header_[1];
  if (body_.empty() && data.size() >= len) {
    // The whole frame is in this chunk: hand it out in place.
    BytesView frame = data.substr(0, len);
    data.remove_prefix(len);
    header_have_ = 0;
    return frame;
  }
  const size_t take = std::min(len - body_.size(), data.size());
  body_.append(data.substr(0, take));
  data.remove_prefix(take);
  if (body_.size() < len) return std::nullopt;
  header_have_ = 0;
  frame_done_ = true;
  return BytesView(body_);
}

// ---- NoiseTransportEncoder ----

Status NoiseTransportEncoder::encode(BytesView plaintext, Bytes& out) {
  if (failed_) return make_error("noise transport encoder has failed");
  // A keyless CipherState passes bytes through; on the wire that would be plaintext.
  if (!cipher_.has_key()) {
    failed_ = true;
    return make_error("noise transport encoder has no key");
  }
  if (plaintext.empty()) return {};
  const uint64_t frames = (plaintext.size() + kNoiseMaxPlaintextPerFrame - 1) / kNoiseMaxPlaintextPerFrame;
  // Checked up front so a write is either wholly framed or not at all.
  if (NoiseCipherState::kReservedNonce - cipher_.nonce() < frames) {
    failed_ = true;
    return make_error("noise send nonce exhausted; the session must be closed");
  }
  const size_t start = out.size();
  out.reserve(start + plaintext.size() + frames * (kNoiseFrameHeaderLen + kNoiseTagLen));
  while (!plaintext.empty()) {
    const size_t n = std::min(plaintext.size(), kNoiseMaxPlaintextPerFrame);
    const size_t header_at = out.size();
    out.append(kNoiseFrameHeaderLen, '\0');
    if (auto st = cipher_.encrypt_append({}, plaintext.substr(0, n), out); !st) {
      out.resize(start);
      failed_ = true;
      return st.error();
    }
    const size_t len = n + kNoiseTagLen;
    out[header_at] = static_cast<char>(len >> 8);
    out[header_at + 1] = static_cast<char>(len & 0xff);
    plaintext.remove_prefix(n);
  }
  return {};
}

Result<Bytes> NoiseTransportEncoder::encode(BytesView plaintext) {
  Bytes out;
  PG_TRY(encode(plaintext, out));
  return out;
}

// ---- NoiseTransportDecoder ----

Error NoiseTransportDecoder::fail(Error e) {
  failed_ = true;
  error_ = e.message;
  return e;
}

Status NoiseTransportDecoder::decode(BytesView data, Bytes& plaintext) {
  if (failed_) return Error{error_};
  if (!cipher_.has_key()) return fail(make_error("noise transport decoder has no key"));
  while (auto frame = reader_.next(data)) {
    if (frame->size() < kNoiseTagLen)
      return fail(make_error("noise transport frame of {} bytes is shorter than the {} byte tag", frame->size(),
                             kNoiseTagLen));
    if (auto st = cipher_.decrypt_append({}, *frame, plaintext); !st) return fail(st.error());
  }
  return {};
}

Result<Bytes> NoiseTransportDecoder::decode(BytesView data) {
  Bytes out;
  PG_TRY(decode(data, out));
  return out;
}

}  // namespace punchgate
