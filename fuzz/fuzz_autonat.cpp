// Untrusted bytes into the AutoNAT message decoder, the server's request judgement and the
// client's reading of an answer (then the reachability tracker).
#include "autonat/autonat_client.hpp"
#include "autonat/autonat_server.hpp"
#include "punchgate/wire/length_prefix.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

using namespace punchgate;

namespace {

// Fixed peers: generating keys per input would dominate the run time.
const PeerId& requester() {
  static const PeerId p = PeerId::from_public_key(Bytes("\x08\x01\x12\x20", 4) + Bytes(32, '\x01'));
  return p;
}
const PeerId& other() {
  static const PeerId p = PeerId::from_public_key(Bytes("\x08\x01\x12\x20", 4) + Bytes(32, '\x02'));
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);
  if (auto m = AutonatMessage::decode(in)) {
    auto again = AutonatMessage::decode(m->encode());
    if (!again || !(*again == *m)) __builtin_trap();  // what we accept we re-encode faithfully
  }
  // The same bytes as a request from a public peer, and (uvarint-framed) as a stream would carry them.
  AutonatServer server;  // fresh per input: its rate limits must not decide what gets explored
  auto observed = Multiaddr::parse("/ip4/203.0.113.7/udp/40000/quic-v1");
  AutonatRequestContext ctx{requester(), *observed, size > 0 && data[0] == 0xff, {}};
  AutonatAdmission a = server.admit(ctx, in, 0);
  if (a.answer && !a.dial.empty()) __builtin_trap();
  if (!a.answer) {
    if (a.dial.empty() || a.dial.size() > server.config().max_dial_addrs) __builtin_trap();
    for (const Multiaddr& d : a.dial) {
      auto ep = quic_endpoint_of(d);
      if (!ep || ep->host != "203.0.113.7" || d.is_relayed()) __builtin_trap();  // never elsewhere
    }
  }
  UvarintFrameReader reader(kMaxAutonatMessageSize);
  std::vector<Bytes> frames;
  (void)reader.feed_all(in, frames);
  // The client side: answers to a request that listed one address.
  std::vector<Multiaddr> asked{*Multiaddr::parse("/ip4/203.0.113.7/udp/4001/quic-v1")};
  ReachabilityTracker tracker;
  frames.emplace_back(in);
  for (size_t i = 0; i < frames.size(); ++i) {
    AutonatEvidence e = interpret_response(frames[i], asked);
    if (e.kind == AutonatEvidence::Kind::Public && e.addr && !(*e.addr == asked[0])) __builtin_trap();
    (void)tracker.record(i % 2 ? requester() : other(), e);
  }
  return 0;
}
