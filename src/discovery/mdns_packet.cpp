#include "discovery/mdns_packet.hpp"

#include <algorithm>

namespace punchgate::mdns {

namespace {

constexpr size_t kHeaderBytes = 12;
constexpr size_t kRecordFixedBytes = 10;  // type, class, ttl, rdlength
constexpr std::string_view kDnsaddrKey = "dnsaddr=";

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Big-endian reads from a bounds-checked cursor; each returns false instead of reading past the end.
class Reader {
 public:
  explicit Reader(BytesView buf, size_t pos = 0) : buf_(buf), pos_(pos) {}
  size_t pos() const { return pos_; }
  void seek(size_t p) { pos_ = p; }
  size_t remaining() const { return pos_ <= buf_.size() ? buf_.size() - pos_ : 0; }

  bool u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = static_cast<uint8_t>(buf_[pos_]);
    pos_ += 1;
    return true;
  }
  bool u16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = static_cast<uint16_t>((static_cast<uint8_t>(buf_[pos_]) << 8) | static_cast<uint8_t>(buf_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    uint16_t hi = 0;
    uint16_t lo = 0;
    if (remaining() < 4) return false;
    (void)u16(hi);
    (void)u16(lo);
    v = (static_cast<uint32_t>(hi) << 16) | lo;
    return true;
  }

 private:
  BytesView buf_;
  size_t pos_;
};

void put_u16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put_u32(Bytes& out, uint32_t v) {
  put_u16(out, static_cast<uint16_t>(v >> 16));
  put_u16(out, static_cast<uint16_t>(v & 0xffff));
}

// Reads the name starting at `start` in `msg`, following compression pointers (RFC 1035 §4.1.4).
// Returns the name in canonical form and sets `end` to the offset just past the name as it sits
// at `start` (a pointer ends it after its two bytes). Termination: a pointer must point strictly
// before the start of the run of labels it ends, so targets strictly decrease and no chain can
// revisit a byte; kMaxPointerJumps additionally bounds the work.
Result<DnsName> read_name(BytesView msg, size_t start, size_t& end) {
  DnsName out;
  size_t p = start;
  size_t segment_start = start;
  size_t jumps = 0;
  bool jumped = false;
  for (;;) {
    if (p >= msg.size()) return make_error("name truncated at offset {}", p);
    const uint8_t len = static_cast<uint8_t>(msg[p]);
    if ((len & 0xC0) == 0xC0) {
      if (p + 1 >= msg.size()) return make_error("compression pointer truncated at offset {}", p);
      const size_t target = (static_cast<size_t>(len & 0x3F) << 8) | static_cast<uint8_t>(msg[p + 1]);
      if (target >= segment_start) {
        return make_error("compression pointer at offset {} to {} does not point backwards", p, target);
      }
      if (++jumps > kMaxPointerJumps) {
        return make_error("more than {} compression pointers in a name", kMaxPointerJumps);
      }
      if (!jumped) end = p + 2;
      jumped = true;
      p = target;
      segment_start = target;
      continue;
    }
    if ((len & 0xC0) != 0) return make_error("reserved label type 0x{:02x} at offset {}", len, p);
    if (len == 0) {
      if (out.size() + 1 > kMaxNameBytes) return make_error("name longer than {} bytes", kMaxNameBytes);
      out.push_back('\0');
      if (!jumped) end = p + 1;
      return out;
    }
    if (msg.size() - p - 1 < len) return make_error("label truncated at offset {}", p);
    // +1 for the root label that must still follow.
    if (out.size() + 1 + len + 1 > kMaxNameBytes) return make_error("name longer than {} bytes", kMaxNameBytes);
    out.push_back(static_cast<char>(len));
    for (size_t i = 0; i < len; ++i) out.push_back(lower(msg[p + 1 + i]));
    p += 1 + len;
  }
}

Result<DnsQuestion> read_question(BytesView msg, Reader& r) {
  size_t end = 0;
  auto name = read_name(msg, r.pos(), end);
  if (!name) return name.error();
  r.seek(end);
  DnsQuestion q;
  q.name = std::move(*name);
  uint16_t qclass = 0;
  if (!r.u16(q.type) || !r.u16(qclass)) return make_error("question truncated");
  q.unicast_response = (qclass & kClassTopBit) != 0;
  q.qclass = qclass & static_cast<uint16_t>(~kClassTopBit);
  return q;
}

Status read_txt(BytesView rdata, std::vector<Bytes>& out) {
  size_t p = 0;
  while (p < rdata.size()) {
    const size_t len = static_cast<uint8_t>(rdata[p]);
    if (rdata.size() - p - 1 < len) return make_error("TXT character-string overruns its record");
    out.emplace_back(rdata.substr(p + 1, len));
    p += 1 + len;
  }
  return {};
}

Result<DnsRecord> read_record(BytesView msg, Reader& r) {
  size_t end = 0;
  auto name = read_name(msg, r.pos(), end);
  if (!name) return name.error();
  r.seek(end);
  DnsRecord rec;
  rec.name = std::move(*name);
  uint16_t rclass = 0;
  uint16_t rdlength = 0;
  if (!r.u16(rec.type) || !r.u16(rclass) || !r.u32(rec.ttl) || !r.u16(rdlength)) {
    return make_error("record header truncated");
  }
  rec.cache_flush = (rclass & kClassTopBit) != 0;
  rec.rclass = rclass & static_cast<uint16_t>(~kClassTopBit);
  if (r.remaining() < rdlength) return make_error("record data truncated");
  const size_t rdata_start = r.pos();
  const size_t rdata_end = rdata_start + rdlength;
  if (rec.type == kTypePtr) {
    size_t target_end = 0;
    // The target may point back anywhere in the message, but its own bytes stay in the rdata.
    auto target = read_name(msg.substr(0, rdata_end), rdata_start, target_end);
    if (!target) return make_error("PTR data: {}", target.error().message);
    rec.ptr_target = std::move(*target);
  } else if (rec.type == kTypeTxt) {
    PG_TRY(read_txt(msg.substr(rdata_start, rdlength), rec.txt));
  }
  r.seek(rdata_end);
  return rec;
}

Status read_records(BytesView msg, Reader& r, size_t count, std::vector<DnsRecord>& out) {
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    auto rec = read_record(msg, r);
    if (!rec) return rec.error();
    out.push_back(std::move(*rec));
  }
  return {};
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

const DnsName& service_name() {
  static const DnsName name = *encode_name(kServiceName);
  return name;
}

// The TXT record for one address: "dnsaddr=<addr>/p2p/<self>" as one character-string.
Result<Bytes> dnsaddr_string(const PeerId& self, const Multiaddr& addr) {
  if (auto id = addr.peer_id(); id && *id != self) return make_error("{} names another peer", addr.to_string());
  std::string text = std::string(kDnsaddrKey) + addr.without_peer_id().with_peer_id(self).to_string();
  if (text.size() > kMaxTxtStringBytes) return make_error("TXT string of {} bytes exceeds 255", text.size());
  return text;
}

}  // namespace

Result<DnsName> encode_name(std::string_view dotted) {
  DnsName out;
  size_t pos = 0;
  while (pos < dotted.size()) {
    size_t dot = dotted.find('.', pos);
    if (dot == std::string_view::npos) dot = dotted.size();
    const size_t len = dot - pos;
    if (len == 0) return make_error("empty label in name {}", dotted);
    if (len > kMaxLabelBytes) return make_error("label longer than {} bytes in name {}", kMaxLabelBytes, dotted);
    out.push_back(static_cast<char>(len));
    for (size_t i = pos; i < dot; ++i) out.push_back(lower(dotted[i]));
    pos = dot + 1;
    if (dot + 1 == dotted.size()) break;  // a trailing dot is the root, written below
  }
  out.push_back('\0');
  if (out.size() > kMaxNameBytes) return make_error("name longer than {} bytes: {}", kMaxNameBytes, dotted);
  return out;
}

std::string name_to_text(BytesView wire) {
  std::string out;
  size_t p = 0;
  while (p < wire.size()) {
    const size_t len = static_cast<uint8_t>(wire[p]);
    if (len == 0 || wire.size() - p - 1 < len) break;
    if (!out.empty()) out.push_back('.');
    for (size_t i = 0; i < len; ++i) {
      const auto c = static_cast<uint8_t>(wire[p + 1 + i]);
      if (c < 0x20 || c >= 0x7f || c == '.' || c == '\\') {
        out += fmt::format("\\x{:02x}", c);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
    p += 1 + len;
  }
  return out;
}

Result<DnsMessage> parse_message(BytesView packet) {
  if (packet.size() > kMaxPacketBytes) {
    return make_error("packet of {} bytes exceeds {}", packet.size(), kMaxPacketBytes);
  }
  Reader r(packet);
  DnsMessage m;
  uint16_t qd = 0;
  uint16_t an = 0;
  uint16_t ns = 0;
  uint16_t ar = 0;
  if (!r.u16(m.id) || !r.u16(m.flags) || !r.u16(qd) || !r.u16(an) || !r.u16(ns) || !r.u16(ar)) {
    return make_error("header truncated ({} bytes)", packet.size());
  }
  if (qd > kMaxQuestions) return make_error("{} questions exceed {}", qd, kMaxQuestions);
  if (static_cast<size_t>(an) + ns + ar > kMaxRecords) {
    return make_error("{} records exceed {}", static_cast<size_t>(an) + ns + ar, kMaxRecords);
  }
  m.questions.reserve(qd);
  for (size_t i = 0; i < qd; ++i) {
    auto q = read_question(packet, r);
    if (!q) return q.error();
    m.questions.push_back(std::move(*q));
  }
  PG_TRY(read_records(packet, r, an, m.answers));
  PG_TRY(read_records(packet, r, ns, m.authorities));
  PG_TRY(read_records(packet, r, ar, m.additionals));
  // Trailing bytes after the counted sections are tolerated, as most resolvers do.
  return m;
}

Bytes build_query() {
  Bytes out;
  out.reserve(kHeaderBytes + service_name().size() + 4);
  put_u16(out, 0);  // id
  put_u16(out, 0);  // flags: standard query
  put_u16(out, 1);  // questions
  put_u16(out, 0);  // answers
  put_u16(out, 0);  // authorities
  put_u16(out, 0);  // additionals
  out += service_name();
  put_u16(out, kTypePtr);
  put_u16(out, kClassIn);
  return out;
}

Result<std::vector<Bytes>> build_response(const PeerId& self, std::string_view instance_label,
                                          const std::vector<Multiaddr>& addrs, uint32_t ttl) {
  if (instance_label.empty() || instance_label.size() > kMaxLabelBytes ||
      instance_label.find('.') != std::string_view::npos) {
    return make_error("bad mDNS instance label of {} bytes", instance_label.size());
  }
  std::vector<Bytes> txts;
  for (const Multiaddr& a : addrs) {
    auto s = dnsaddr_string(self, a);
    if (s) txts.push_back(std::move(*s));
  }
  if (txts.empty()) return std::vector<Bytes>{};

  // Fixed layout, so the compression pointers are constants: the answer's owner name sits right
  // after the header, and the instance name is the first thing in the PTR's rdata.
  const Bytes& service = service_name();
  const size_t service_offset = kHeaderBytes;
  const size_t instance_offset = service_offset + service.size() + kRecordFixedBytes;
  static_assert(kHeaderBytes + 17 + kRecordFixedBytes < 0x3FFF, "pointer offsets fit 14 bits");
  auto pointer = [](Bytes& out, size_t offset) { put_u16(out, static_cast<uint16_t>(0xC000 | offset)); };

  auto start_packet = [&](Bytes& out) {
    out.clear();
    put_u16(out, 0);  // id: zero in multicast responses (RFC 6762 §18.1)
    put_u16(out, kFlagResponse | kFlagAuthoritative);
    put_u16(out, 0);  // questions
    put_u16(out, 1);  // answers: the PTR
    put_u16(out, 0);  // authorities
    put_u16(out, 0);  // additionals, patched when the packet is complete
    out += service;
    put_u16(out, kTypePtr);
    put_u16(out, kClassIn);  // shared record: no cache-flush bit (RFC 6762 §10.2)
    put_u32(out, ttl);
    put_u16(out, static_cast<uint16_t>(1 + instance_label.size() + 2));
    out.push_back(static_cast<char>(instance_label.size()));
    out += instance_label;
    pointer(out, service_offset);
  };
  auto finish_packet = [](Bytes& out, size_t records, std::vector<Bytes>& packets) {
    out[10] = static_cast<char>(records >> 8);
    out[11] = static_cast<char>(records & 0xff);
    packets.push_back(std::move(out));
  };

  std::vector<Bytes> packets;
  Bytes cur;
  size_t in_packet = 0;
  start_packet(cur);
  for (const Bytes& txt : txts) {
    const size_t record_size = 2 + kRecordFixedBytes + 1 + txt.size();
    if (in_packet > 0 && cur.size() + record_size > kMaxResponseBytes) {
      finish_packet(cur, in_packet, packets);
      start_packet(cur);
      in_packet = 0;
    }
    pointer(cur, instance_offset);
    put_u16(cur, kTypeTxt);
    put_u16(cur, kClassTopBit | kClassIn);  // unique record: cache-flush set
    put_u32(cur, ttl);
    put_u16(cur, static_cast<uint16_t>(1 + txt.size()));
    cur.push_back(static_cast<char>(txt.size()));
    cur += txt;
    ++in_packet;
  }
  finish_packet(cur, in_packet, packets);
  return packets;
}

bool is_peer_query(const DnsMessage& msg) {
  if (msg.is_response() || msg.opcode() != 0) return false;
  return std::any_of(msg.questions.begin(), msg.questions.end(), [](const DnsQuestion& q) {
    return q.name == service_name() && (q.type == kTypePtr || q.type == kTypeAny) &&
           (q.qclass == kClassIn || q.qclass == kClassAny);
  });
}

std::vector<DiscoveredPeer> extract_peers(const DnsMessage& msg, const PeerId& self) {
  std::vector<DiscoveredPeer> out;
  // RFC 6762 §18.3, §18.11: responses with another opcode or a non-zero rcode are ignored.
  if (!msg.is_response() || msg.opcode() != 0 || msg.rcode() != 0) return out;

  const auto records = {&msg.answers, &msg.additionals};
  std::vector<DnsName> instances;
  for (const auto* section : records) {
    for (const DnsRecord& r : *section) {
      if (r.type != kTypePtr || r.rclass != kClassIn || r.ttl == 0 || r.name != service_name()) continue;
      if (std::find(instances.begin(), instances.end(), r.ptr_target) != instances.end()) continue;
      if (instances.size() >= kMaxPeersPerMessage) break;
      instances.push_back(r.ptr_target);
    }
  }

  for (const DnsName& instance : instances) {
    PeerId peer;
    std::vector<Multiaddr> addrs;
    for (const auto* section : records) {
      for (const DnsRecord& r : *section) {
        if (r.type != kTypeTxt || r.rclass != kClassIn || r.ttl == 0 || r.name != instance) continue;
        for (const Bytes& s : r.txt) {
          // DNS-SD keys are case-insensitive (RFC 6763 §6.4).
          if (s.size() <= kDnsaddrKey.size() || !equals_ignore_case(s.substr(0, kDnsaddrKey.size()), kDnsaddrKey)) {
            continue;
          }
          auto ma = Multiaddr::parse(BytesView(s).substr(kDnsaddrKey.size()));
          if (!ma) continue;
          auto id = ma->peer_id();
          if (!id) continue;
          if (peer.empty()) peer = *id;
          if (*id != peer) continue;
          Multiaddr bare = ma->without_peer_id();
          // ".../p2p/X/p2p/Y" reaches nobody; a relayed address ends in /p2p-circuit instead.
          if (bare.empty() || bare.peer_id_multihash()) continue;
          if (std::find(addrs.begin(), addrs.end(), bare) != addrs.end()) continue;
          if (addrs.size() < kMaxAddrsPerPeer) addrs.push_back(std::move(bare));
        }
      }
    }
    if (peer.empty() || peer == self || addrs.empty()) continue;
    auto same = std::find_if(out.begin(), out.end(), [&](const DiscoveredPeer& d) { return d.peer == peer; });
    if (same == out.end()) {
      out.push_back({std::move(peer), std::move(addrs)});
      continue;
    }
    for (Multiaddr& a : addrs) {
      if (same->addrs.size() >= kMaxAddrsPerPeer) break;
      if (std::find(same->addrs.begin(), same->addrs.end(), a) == same->addrs.end()) {
        same->addrs.push_back(std::move(a));
      }
    }
  }
  return out;
}

}  // namespace punchgate::mdns
