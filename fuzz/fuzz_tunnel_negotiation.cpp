// Feeds arbitrary bytes to the tunnel negotiation reader, the JSON decoders, the datagram
// de-framer and (as text) the --expose/--tunnel parsers, checking their invariants:
// reader output is the same however the input is split, decoded messages re-encode to
// something that decodes to the same value, and accepted specs survive to_string().
#include "punchgate/tunnel/tunnel_negotiation.hpp"
#include "punchgate/tunnel/tunnel_spec.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>

using namespace punchgate;

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_tunnel_negotiation: %s: %s\n", what, detail.c_str());
  std::abort();
}

struct ReadOutcome {
  bool error = false;
  std::optional<Bytes> body;
  Bytes rest;
};

// Feeds `in` in chunks of `chunk` bytes (0 = all at once), stopping at the first error.
ReadOutcome read_in_chunks(BytesView in, size_t chunk) {
  TunnelMessageReader reader;
  ReadOutcome out;
  size_t step = chunk == 0 ? in.size() : chunk;
  for (size_t pos = 0; pos < in.size() || pos == 0; pos += step) {
    auto r = reader.feed(in.substr(pos, step));
    if (!r.ok()) {
      out.error = true;
      return out;
    }
    if (r->has_value()) {
      if (out.body) fail("reader completed twice", to_hex(in));
      out.body = std::move(**r);
    }
    if (step == 0) break;
  }
  out.rest = reader.take_rest();
  return out;
}

void check_reader(BytesView in) {
  ReadOutcome whole = read_in_chunks(in, 0);
  size_t chunk = in.empty() ? 1 : 1 + static_cast<unsigned char>(in[0]) % 7;
  ReadOutcome split = read_in_chunks(in, chunk);
  if (whole.error != split.error || whole.body != split.body || whole.rest != split.rest) {
    fail("reader depends on how input is split", to_hex(in));
  }
  if (whole.body) {
    if (whole.body->size() > kMaxTunnelMessage) fail("body over the limit", std::to_string(whole.body->size()));
    if (4 + whole.body->size() + whole.rest.size() != in.size()) fail("reader lost or invented bytes", to_hex(in));
    if (in.substr(4, whole.body->size()) != *whole.body) fail("body is not the framed bytes", to_hex(in));
    if (in.substr(4 + whole.body->size()) != whole.rest) fail("rest is not the trailing bytes", to_hex(in));
  } else if (!whole.rest.empty()) {
    fail("rest before completion", to_hex(in));
  }
}

void check_decoders(BytesView in) {
  if (auto req = decode_tunnel_request(in); req.ok()) {
    Bytes wire = encode_tunnel_request(*req);
    auto back = decode_tunnel_request(BytesView(wire).substr(4));
    if (!back.ok()) fail("re-encoded request does not decode", back.error().message);
    // Only valid UTF-8 reaches here (the parser rejects the rest), so nothing was replaced.
    if (back->service_name != req->service_name) fail("request round trip changed the name", req->service_name);
  }
  if (auto resp = decode_tunnel_response(in); resp.ok()) {
    Bytes wire = encode_tunnel_response(*resp);
    if (wire.size() > 4 + kMaxTunnelMessage) fail("encoded response over the limit", std::to_string(wire.size()));
    auto back = decode_tunnel_response(BytesView(wire).substr(4));
    if (!back.ok()) fail("re-encoded response does not decode", back.error().message);
    if (back->accepted != resp->accepted) fail("response round trip changed accepted", std::string(in));
    // Long reasons are truncated on encode, so only a prefix is promised.
    if (resp->reason.compare(0, back->reason.size(), back->reason) != 0) {
      fail("response round trip changed the reason", resp->reason);
    }
  }
}

void check_datagrams(BytesView in) {
  Bytes buf(in);
  std::vector<Bytes> got;
  take_datagrams(buf, got);
  Bytes reframed;
  for (const auto& d : got) reframed += frame_datagram(d);
  if (reframed + buf != in) fail("datagram split does not reassemble", to_hex(in));
  if (buf.size() >= 2) {
    size_t len = (size_t{static_cast<unsigned char>(buf[0])} << 8) | static_cast<unsigned char>(buf[1]);
    if (buf.size() - 2 >= len && got.size() < 1024) fail("complete datagram left behind", to_hex(in));
  }
}

void check_specs(std::string_view text) {
  if (auto e = parse_expose(text); e.ok()) {
    std::string s = e->to_string();
    auto again = parse_expose(s);
    if (!again.ok()) fail("expose to_string() does not parse", s + " -> " + again.error().message);
    if (again->name != e->name || !(again->target == e->target) || again->transport != e->transport) {
      fail("expose round trip changed the value", s);
    }
    if (e->target.port == 0) fail("expose accepted port 0", s);
    if (validate_exposes({*e, *again}).ok()) fail("duplicate expose not detected", s);
  } else if (e.error().message.find('\n') != std::string::npos) {
    fail("multi-line error", e.error().message);
  }
  if (auto t = parse_tunnel(text); t.ok()) {
    std::string s = t->to_string();
    auto again = parse_tunnel(s);
    if (!again.ok()) fail("tunnel to_string() does not parse", s + " -> " + again.error().message);
    if (!(again->peer == t->peer) || again->service != t->service || !(again->bind == t->bind) ||
        again->transport != t->transport) {
      fail("tunnel round trip changed the value", s);
    }
    if (t->bind.port == 0) fail("tunnel accepted port 0", s);
    if (validate_tunnels({*t, *again}).ok()) fail("duplicate tunnel bind not detected", s);
  } else if (t.error().message.find('\n') != std::string::npos) {
    fail("multi-line error", t.error().message);
  }
  if (auto hp = parse_host_port(text, true); hp.ok()) {
    auto again = parse_host_port(hp->to_string(), true);
    if (!again.ok() || !(*again == *hp)) fail("host:port round trip failed", hp->to_string());
  }
  (void)validate_service_name(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  BytesView in(reinterpret_cast<const char*>(data), size);
  check_reader(in);
  check_decoders(in);
  check_datagrams(in);
  check_specs(in);
  return 0;
}
