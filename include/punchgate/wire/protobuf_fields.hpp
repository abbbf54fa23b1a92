// Reading protobuf fields from untrusted bytes with protozero, with the checks protozero leaves
// to its caller (keys and lengths that do not fit 32 bits, wire types that do not match the
// field). `what` names the message in errors ("circuit peer", "dcutr message"). protozero's own
// exceptions (truncated varints, short data) still propagate: decoders catch them once at the top.
#pragma once

#include "punchgate/core/bytes.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/wire/protobuf_bounds.hpp"

#include <protozero/pbf_reader.hpp>

#include <cstdint>
#include <string_view>

namespace punchgate::protobuf {

Status expect_wire(std::string_view what, const protozero::pbf_reader& r, protozero::pbf_wire_type want);
Result<BytesView> read_bytes(std::string_view what, protozero::pbf_reader& r);
Result<uint64_t> read_varint(std::string_view what, protozero::pbf_reader& r);
// Enums are int32 on the wire; negative ones arrive sign-extended to 64 bits.
Result<int32_t> read_enum(std::string_view what, protozero::pbf_reader& r);

// Walks the fields of one (sub)message. `on_field(reader, tag)` handles a known field and returns
// true, or false for an unknown one, which is skipped.
template <typename OnField>
Status walk(std::string_view what, BytesView msg, OnField&& on_field) {
  protozero::pbf_reader r(msg.data(), msg.size());
  auto rest = [&r] { return BytesView(r.data().data(), r.data().size()); };
  while (true) {
    if (!protobuf_key_fits(rest())) return make_error("{} field key out of range", what);
    if (!r.next()) break;
    if (r.wire_type() == protozero::pbf_wire_type::length_delimited && !protobuf_length_fits(rest()))
      return make_error("{} field {} runs past the end of the message", what, r.tag());
    Result<bool> handled = on_field(r, r.tag());
    if (!handled) return handled.error();
    if (!*handled) r.skip();
  }
  return {};
}

}  // namespace punchgate::protobuf
