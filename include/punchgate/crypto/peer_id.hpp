// PeerId: the multihash of a protobuf-encoded public key (peer-ids/peer-ids.md).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"

#include <functional>
#include <string>

namespace punchgate {

class PeerId {
 public:
  PeerId() = default;

  // From the protobuf PublicKey bytes: identity multihash when <= 42 bytes, else sha2-256.
  static PeerId from_public_key(BytesView public_key_protobuf);
  // From raw multihash bytes (identity 0x00 or sha2-256 0x12 only; length checked).
  static Result<PeerId> from_bytes(BytesView multihash);
  // Text: legacy base58btc multihash ("12D3KooW…", "Qm…") or CIDv1 multibase with libp2p-key codec 0x72.
  static Result<PeerId> parse(std::string_view text);

  const Bytes& bytes() const { return multihash_; }
  std::string to_base58() const;
  bool empty() const { return multihash_.empty(); }
  // The embedded protobuf public key when this is an identity multihash, else empty.
  BytesView inline_public_key() const;

  friend bool operator==(const PeerId&, const PeerId&) = default;
  friend auto operator<=>(const PeerId&, const PeerId&) = default;

 private:
  explicit PeerId(Bytes mh) : multihash_(std::move(mh)) {}
  Bytes multihash_;
};

}  // namespace punchgate

template <>
struct std::hash<punchgate::PeerId> {
  size_t operator()(const punchgate::PeerId& p) const noexcept { return std::hash<std::string>{}(p.bytes()); }
};
