// Feeds arbitrary bytes to both multiaddr parsers and checks the round trips:
// binary -> value -> binary is the identity, and every accepted value survives text and back.
#include "punchgate/wire/multiaddr.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

using namespace punchgate;

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_multiaddr: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Any valid multiaddr must print, reparse to itself, and re-encode to binary that parses back.
void check_value(const Multiaddr& m) {
  std::string text = m.to_string();
  auto reparsed = Multiaddr::parse(text);
  if (!reparsed.ok()) fail("to_string() does not parse", text + " -> " + reparsed.error().message);
  if (!(*reparsed == m)) fail("text round trip changed the value", text + " -> " + reparsed->to_string());
  if (reparsed->to_string() != text) fail("to_string() is not canonical", text);
  auto rebinary = Multiaddr::from_bytes(m.to_bytes());
  if (!rebinary.ok()) fail("to_bytes() does not parse", to_hex(m.to_bytes()) + " -> " + rebinary.error().message);
  if (!(*rebinary == m)) fail("binary round trip changed the value", text);

  // The QUIC helper must either accept with a sane result or refuse; it must agree with itself.
  auto ep = quic_endpoint_of(m);
  if (ep.ok() && !ep->is_dns && ep->family == 0) fail("IP endpoint without a family", text);
  (void)m.peer_id_multihash();
  (void)m.without_peer_id().to_bytes();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);

  auto bin = Multiaddr::from_bytes(in);
  if (bin.ok()) {
    if (bin->to_bytes() != in) fail("from_bytes/to_bytes is not the identity", to_hex(in));
    check_value(*bin);
  }

  auto text = Multiaddr::parse(in);
  if (text.ok()) check_value(*text);
  return 0;
}
