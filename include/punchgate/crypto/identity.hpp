// Ed25519 host identity (libsodium) and the libp2p protobuf key encodings (peer-ids/peer-ids.md).
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/crypto/peer_id.hpp"

#include <array>
#include <filesystem>

namespace punchgate {

// libp2p KeyType values.
enum class KeyType : int { RSA = 0, Ed25519 = 1, Secp256k1 = 2, ECDSA = 3 };
// "RSA", "Ed25519", …, or "unknown" for a number outside the enum (it may come from a peer).
std::string_view key_type_name(uint64_t type);
inline std::string_view key_type_name(KeyType type) { return key_type_name(static_cast<uint64_t>(type)); }

struct PublicKey {
  KeyType type = KeyType::Ed25519;
  Bytes data;  // for Ed25519: 32 raw bytes

  // Deterministic protobuf encoding (field 1 varint type, field 2 bytes data).
  Bytes to_protobuf() const;
  static Result<PublicKey> from_protobuf(BytesView proto);
  PeerId peer_id() const { return PeerId::from_public_key(to_protobuf()); }
  // Only Ed25519 is supported for verification; other types return false.
  bool verify(BytesView message, BytesView signature) const;
};

class Identity {
 public:
  // Copies and moves duplicate the secret; every instance wipes its copy when destroyed.
  Identity(const Identity&) = default;
  Identity& operator=(const Identity&) = default;
  Identity(Identity&&) noexcept = default;
  Identity& operator=(Identity&&) noexcept = default;
  ~Identity();  // sodium_memzero over the secret key

  static Identity generate();
  // Private key protobuf (KeyType Ed25519, Data = 64 bytes secret||public), as rust-libp2p writes it.
  // from_protobuf also takes the legacy 96-byte secret||public||public form (both copies must match)
  // and rejects a public half that does not match the seed; to_protobuf always writes 64 bytes.
  static Result<Identity> from_protobuf(BytesView private_key_proto);
  Bytes to_protobuf() const;

  // Loads the key file, or creates it (temp file + rename, mode 0600) when it does not exist.
  // A present but unreadable, corrupt or wrong-type file is an error and is never overwritten.
  static Result<Identity> load_or_create(const std::filesystem::path& path);

  const PublicKey& public_key() const { return public_; }
  const PeerId& peer_id() const { return peer_id_; }
  Bytes sign(BytesView message) const;  // 64-byte Ed25519 signature

 private:
  Identity() = default;

  std::array<uint8_t, 64> secret_{};  // libsodium layout: seed || public key
  PublicKey public_;
  PeerId peer_id_;
};

}  // namespace punchgate
