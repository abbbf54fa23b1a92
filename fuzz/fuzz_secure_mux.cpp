// Untrusted bytes into the relayed-connection upgrade (multistream /noise, Noise XX, multistream
// /yamux/1.0.0, yamux) as listener and as dialer, in the chunking the first byte picks.
#include "transport/secure_mux_session.hpp"

#include <cstddef>
#include <cstdint>

using namespace punchgate;

namespace {
const Identity& local() {
  static const Identity id = Identity::generate();
  return id;
}
const PeerId& remote() {
  static const PeerId id = Identity::generate().peer_id();
  return id;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  BytesView input(reinterpret_cast<const char*>(data + 1), size - 1);
  for (bool dialer : {false, true}) {
    auto s = dialer ? SecureMuxSession::dialer(local(), remote()) : SecureMuxSession::listener(local());
    for (size_t at = 0; at < input.size() && !s.failed(); at += chunk) {
      (void)s.feed(input.substr(at, chunk));
      (void)s.take_output();
    }
  }
  return 0;
}
