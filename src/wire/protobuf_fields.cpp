#include "punchgate/wire/protobuf_fields.hpp"

#include <limits>

namespace punchgate::protobuf {

namespace {

const char* wire_type_name(protozero::pbf_wire_type t) {
  switch (t) {
    case protozero::pbf_wire_type::varint: return "varint";
    case protozero::pbf_wire_type::fixed64: return "fixed64";
    case protozero::pbf_wire_type::length_delimited: return "length-delimited";
    case protozero::pbf_wire_type::fixed32: return "fixed32";
    default: return "unknown";
  }
}

}  // namespace

Status expect_wire(std::string_view what, const protozero::pbf_reader& r, protozero::pbf_wire_type want) {
  if (r.wire_type() == want) return {};
  return make_error("{} field {} has wire type {}, expected {}", what, r.tag(), wire_type_name(r.wire_type()),
                    wire_type_name(want));
}

Result<BytesView> read_bytes(std::string_view what, protozero::pbf_reader& r) {
  PG_TRY(expect_wire(what, r, protozero::pbf_wire_type::length_delimited));
  protozero::data_view v = r.get_view();
  return BytesView(v.data(), v.size());
}

Result<uint64_t> read_varint(std::string_view what, protozero::pbf_reader& r) {
  PG_TRY(expect_wire(what, r, protozero::pbf_wire_type::varint));
  return r.get_uint64();
}

Result<int32_t> read_enum(std::string_view what, protozero::pbf_reader& r) {
  PG_TRY(expect_wire(what, r, protozero::pbf_wire_type::varint));
  const int64_t v = r.get_int64();
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
    return make_error("{} field {} value {} is out of the int32 enum range", what, r.tag(), v);
  return static_cast<int32_t>(v);
}

}  // namespace punchgate::protobuf
