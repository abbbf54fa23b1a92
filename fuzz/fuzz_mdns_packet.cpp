// Feeds arbitrary datagrams to the mDNS parser, as any host on the link can. Besides "never
// crash, never over-read" (ASan/UBSan), checks that whatever it accepts is within the caps and
// that every peer it extracts survives our own response encoding.
#include "discovery/mdns_packet.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

using namespace punchgate;

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_mdns_packet: %s: %s\n", what, detail.c_str());
  std::abort();
}

void check_name(const mdns::DnsName& n) {
  if (n.empty() || n.size() > mdns::kMaxNameBytes || n.back() != '\0') fail("bad name", to_hex(n));
  (void)mdns::name_to_text(n);
}

void check_records(const std::vector<mdns::DnsRecord>& records) {
  for (const auto& r : records) {
    check_name(r.name);
    if (r.type == mdns::kTypePtr) check_name(r.ptr_target);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);
  auto m = mdns::parse_message(in);
  if (!m.ok()) return 0;

  if (m->questions.size() > mdns::kMaxQuestions) fail("question cap", to_hex(in));
  if (m->answers.size() + m->authorities.size() + m->additionals.size() > mdns::kMaxRecords) {
    fail("record cap", to_hex(in));
  }
  for (const auto& q : m->questions) check_name(q.name);
  check_records(m->answers);
  check_records(m->authorities);
  check_records(m->additionals);
  (void)mdns::is_peer_query(*m);

  auto peers = mdns::extract_peers(*m, PeerId());
  if (peers.size() > mdns::kMaxPeersPerMessage) fail("peer cap", to_hex(in));
  for (const auto& p : peers) {
    if (p.peer.empty() || p.addrs.empty() || p.addrs.size() > mdns::kMaxAddrsPerPeer) fail("bad peer", to_hex(in));
    // Whatever we learn we could announce again: our encoding of it must parse back to the same
    // peer, with no address that was not there.
    auto packets = mdns::build_response(p.peer, "fuzz", p.addrs);
    if (!packets.ok()) fail("build_response failed", packets.error().message);
    for (const Bytes& pkt : *packets) {
      auto again = mdns::parse_message(pkt);
      if (!again.ok()) fail("own response does not parse", again.error().message);
      auto back = mdns::extract_peers(*again, PeerId());
      if (back.size() != 1 || back[0].peer != p.peer) fail("own response lost the peer", to_hex(pkt));
      for (const auto& a : back[0].addrs) {
        if (std::find(p.addrs.begin(), p.addrs.end(), a) == p.addrs.end()) fail("own response invented", a.to_string());
      }
    }
    // Ourselves are never discovered.
    auto self = mdns::extract_peers(*m, p.peer);
    for (const auto& s : self) {
      if (s.peer == p.peer) fail("self not filtered", p.peer.to_base58());
    }
  }
  return 0;
}
