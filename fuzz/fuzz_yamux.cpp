// libFuzzer target: a yamux server session driven by an input-chosen script of operations. Raw
// input bytes are fed to the server, interleaved with the valid output of a client session that
// the script also drives (open, write, FIN, RST, ping, go away), and the server's own application
// calls. Checked after every step: nothing crashes, the output, event queue, stream table and
// receive buffers stay within their caps, and, while no raw bytes have been injected or output
// dropped, neither side sees a protocol error and every byte arrives in order and unaltered.
#include "transport/yamux_session.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>

using namespace punchgate;

namespace {

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint32_t u16() {
    const uint32_t hi = byte();
    return hi << 8 | byte();
  }
  BytesView take(size_t want) {
    const size_t k = want < n ? want : n;
    BytesView v(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return v;
  }
};

// Stream content: byte `offset` of stream `id` is pattern()[(offset + id * 40503) % kPeriod], a
// pseudo-random pattern, so the receiver checks content without keeping copies. Built and checked
// with memcpy / memcmp: per-byte loops under the fuzzer's instrumentation cost ~20 ns a byte.
constexpr size_t kPeriod = size_t{1} << 16;

const char* pattern() {
  static const Bytes p = [] {
    Bytes b(kPeriod, '\0');
    uint32_t x = 0x9e3779b9;
    for (char& c : b) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      c = static_cast<char>(x >> 24);
    }
    return b;
  }();
  return p.data();
}

// Calls f(expected piece) for consecutive pieces of stream `id` from `offset` on, n bytes in all.
template <typename F>
void for_content(uint32_t id, uint64_t offset, size_t n, F f) {
  while (n > 0) {
    const size_t start = (offset + uint64_t{id} * 40503) % kPeriod;
    const size_t k = std::min(n, kPeriod - start);
    f(BytesView(pattern() + start, k));
    offset += k;
    n -= k;
  }
}

Bytes make_content(uint32_t id, uint64_t offset, size_t n) {
  Bytes b;
  b.reserve(n);
  for_content(id, offset, n, [&](BytesView piece) { b.append(piece); });
  return b;
}

bool content_ok(uint32_t id, uint64_t offset, BytesView data) {
  bool ok = true;
  size_t at = 0;
  for_content(id, offset, data.size(), [&](BytesView piece) {
    ok = ok && std::memcmp(data.data() + at, piece.data(), piece.size()) == 0;
    at += piece.size();
  });
  return ok;
}

// Work one input may cost: payload bytes built, fed or checked, plus kFeedCost per feed() call
// (about 1 us each under the fuzzer's instrumentation, against a few ns a byte). A few input bytes
// can make a side write 8 KiB, or deliver it in 1-byte feed() calls, so without a cap an input of
// 64 KiB moved tens of MB (seconds). 2 MiB still lets a script exhaust and reopen stream windows
// and caps an input at ~10 ms.
constexpr size_t kWorkBudget = size_t{2} << 20;
constexpr size_t kFeedCost = 256;
size_t g_work = 0;

YamuxConfig fuzz_config() {
  YamuxConfig c;
  c.max_inbound_streams = 4;
  c.max_outbound_streams = 4;
  c.max_frame_data = 4096;
  c.output_high_water = 8192;
  c.output_hard_limit = 0;  // raised to high water + 64 KiB
  c.max_pending_pings = 4;
  return c;
}

struct Side {
  explicit Side(YamuxRole role) : s(role, fuzz_config()) {}
  YamuxSession s;
  std::map<uint32_t, uint64_t> sent;      // bytes written per stream
  std::map<uint32_t, uint64_t> received;  // bytes received per stream
  std::map<uint32_t, uint64_t> unconsumed;
  uint32_t last_stream = 0;
  size_t app_frames = 0;  // control frames our own calls queued since the output was last taken
};

[[noreturn]] void bug() { __builtin_trap(); }

void check_bounds(const Side& side) {
  const YamuxSession& s = side.s;
  const YamuxConfig& c = s.config();
  const size_t max_streams = c.max_inbound_streams + c.max_outbound_streams;
  if (s.stream_count() > max_streams) bug();
  if (s.pending_events() > 6 * max_streams + c.max_pending_pings + 2) bug();
  if (s.buffered_bytes() > s.stream_count() * size_t{c.receive_window}) bug();
  // Data stops at the high-water mark (plus the headers of the frames of one write); control
  // frames provoked by the peer stop at the hard limit; the rest are our own calls.
  const size_t data_slack = c.output_high_water + (c.output_high_water / c.max_frame_data + 2) * kYamuxHeaderLen;
  if (s.output_size() > c.output_hard_limit + data_slack + 2 * kYamuxHeaderLen + side.app_frames * kYamuxHeaderLen)
    bug();
}

// Polls every event; checks content when the byte stream is trustworthy.
void drain(Side& side, bool trusted) {
  while (auto e = side.s.poll_event()) {
    switch (e->kind) {
      case YamuxEventKind::Data: {
        uint64_t& off = side.received[e->stream_id];
        if (trusted && !content_ok(e->stream_id, off, e->data)) bug();
        g_work += e->data.size();
        off += e->data.size();
        side.unconsumed[e->stream_id] += e->data.size();
        break;
      }
      case YamuxEventKind::InboundStream: side.last_stream = e->stream_id; break;
      case YamuxEventKind::StreamClosed:
        side.sent.erase(e->stream_id);
        side.received.erase(e->stream_id);
        side.unconsumed.erase(e->stream_id);
        break;
      default: break;
    }
  }
}

uint32_t pick_stream(Side& side, Input& in) {
  // Mostly a stream we know of, sometimes any id at all.
  const uint8_t b = in.byte();
  if (b >= 0xf0) return in.u16();
  // (With `unconsumed` empty, begin() is end(), and stepping past end() never returns to it.)
  if (side.unconsumed.empty()) return side.last_stream;
  auto it = side.unconsumed.begin();
  for (uint8_t i = 0; i < b % 8 && std::next(it) != side.unconsumed.end(); ++i) ++it;
  if (it != side.unconsumed.end()) return it->first;
  return side.last_stream;
}

void app_op(Side& side, uint8_t op, Input& in) {
  YamuxSession& s = side.s;
  switch (op) {
    case 0: {
      auto id = s.open_stream();
      if (id.ok()) {
        side.last_stream = *id;
        side.sent[*id] = 0;
        side.unconsumed[*id] = 0;
      }
      ++side.app_frames;
      break;
    }
    case 1: {
      const uint32_t id = pick_stream(side, in);
      // write() takes at most output_high_water bytes: building more content only costs time.
      const size_t n = std::min<size_t>(in.u16() * 8, s.config().output_high_water + 64);
      uint64_t& off = side.sent[id];
      g_work += n;
      auto w = s.write(id, make_content(id, off, n));
      if (w.ok())
        off += *w;
      else
        side.sent.erase(id);  // keep the map to streams that exist
      ++side.app_frames;  // a split ACK window update at most
      break;
    }
    case 2: (void)s.shutdown_write(pick_stream(side, in)); ++side.app_frames; break;
    case 3: (void)s.reset(pick_stream(side, in)); ++side.app_frames; break;
    case 4: {
      const uint32_t id = pick_stream(side, in);
      auto it = side.unconsumed.find(id);
      const size_t n = it == side.unconsumed.end() ? in.u16() : it->second;
      s.consume(id, n);
      if (it != side.unconsumed.end()) it->second = 0;
      side.app_frames += 2;
      break;
    }
    case 5: (void)s.ping(); ++side.app_frames; break;
    case 6: s.go_away(static_cast<YamuxGoAwayCode>(in.byte() % 3)); ++side.app_frames; break;
    default: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  Side server(YamuxRole::Server);
  Side client(YamuxRole::Client);
  bool tainted = false;  // raw bytes injected or output dropped: no more content/validity checks
  g_work = 0;

  auto deliver = [&](Side& from, Side& to, size_t max, size_t chunk) {
    const Bytes out = from.s.take_output(max);
    from.app_frames = 0;
    BytesView v(out);
    while (!v.empty()) {
      const size_t k = chunk == 0 || chunk > v.size() ? v.size() : chunk;
      auto st = to.s.feed(v.substr(0, k));
      v.remove_prefix(k);
      g_work += k + kFeedCost;
      if (!st.ok()) {
        // A valid peer never causes a protocol error. (Flooding us with RSTs to refuse while our
        // output is never taken may legitimately hit the hard limit.)
        if (!tainted && to.s.output_size() <= to.s.config().output_hard_limit + 2 * kYamuxHeaderLen) bug();
        break;
      }
    }
  };

  while (!in.empty() && g_work < kWorkBudget) {
    const uint8_t op = in.byte();
    switch (op >> 4) {
      case 0:
      case 1:
      case 2: {  // raw bytes into the server
        const BytesView raw = in.take(in.byte() + 1);
        g_work += raw.size() + kFeedCost;
        tainted = true;
        (void)server.s.feed(raw);
        break;
      }
      case 3:
      case 4:
      case 5: app_op(client, op & 0x0f, in); break;
      case 6:
      case 7: app_op(server, op & 0x0f, in); break;
      case 8:
      case 9: deliver(client, server, SIZE_MAX, op & 0x0f); break;
      case 10:
      case 11: deliver(server, client, (op & 0x0f) == 0 ? SIZE_MAX : in.u16(), op & 0x07); break;
      case 12: {  // the socket lost bytes: drop output
        Side& side = op & 1 ? server : client;
        if (side.s.output_size() > 0) tainted = true;
        g_work += side.s.take_output(in.u16()).size();
        side.app_frames = 0;
        break;
      }
      default: break;  // just poll
    }
    drain(server, !tainted);
    drain(client, !tainted);
    check_bounds(server);
    check_bounds(client);
  }
  return 0;
}
