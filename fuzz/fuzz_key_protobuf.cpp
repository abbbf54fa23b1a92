// libFuzzer target: PublicKey/PrivateKey protobuf parsing (peer-ids/peer-ids.md) on arbitrary bytes.
#include "punchgate/crypto/identity.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace punchgate;
  const BytesView in = view_of(data, size);

  auto pk = PublicKey::from_protobuf(in);
  if (pk.ok()) {
    // The canonical re-encoding parses back to the same key.
    auto again = PublicKey::from_protobuf(pk->to_protobuf());
    if (!again.ok() || again->type != pk->type || again->data != pk->data) __builtin_trap();
    (void)pk->peer_id();
    (void)pk->verify("m", BytesView(reinterpret_cast<const char*>(data), size < 64 ? size : 64));
  }

  auto id = Identity::from_protobuf(in);
  if (id.ok()) {
    auto again = Identity::from_protobuf(id->to_protobuf());
    if (!again.ok() || again->peer_id() != id->peer_id()) __builtin_trap();
    // A loaded key signs and its public key verifies.
    if (!id->public_key().verify("fuzz", id->sign("fuzz"))) __builtin_trap();
  }
  return 0;
}
