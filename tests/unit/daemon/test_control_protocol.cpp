#include "daemon/control_protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

using namespace punchgate;
using nlohmann::json;
using namespace std::string_literals;

namespace {

ControlRequest parse_ok(std::string_view line) {
  auto r = parse_control_request(line);
  if (auto* e = std::get_if<ControlRequestError>(&r)) {
    ADD_FAILURE() << "unexpected error for " << line << ": " << e->message;
    return {};
  }
  return std::get<ControlRequest>(std::move(r));
}

ControlRequestError parse_err(std::string_view line) {
  auto r = parse_control_request(line);
  if (!std::holds_alternative<ControlRequestError>(r)) {
    ADD_FAILURE() << "expected an error for " << line;
    return {};
  }
  return std::get<ControlRequestError>(std::move(r));
}

// Every line a reader yields for `chunks` fed in order.
std::vector<std::string> lines_of(ControlLineReader& r, const std::vector<std::string>& chunks) {
  std::vector<std::string> out;
  for (const auto& c : chunks) {
    r.feed(c);
    while (auto l = r.next()) out.push_back(*l);
  }
  return out;
}

}  // namespace

TEST(ControlProtocol, ParsesFullRequest) {
  auto r = parse_ok(R"({"id":7,"method":"tunnel.add","params":{"spec":"web@127.0.0.1:8080","by_name":true}})");
  EXPECT_EQ(r.id, json(7));
  EXPECT_EQ(r.method, "tunnel.add");
  EXPECT_EQ(r.params, (json{{"spec", "web@127.0.0.1:8080"}, {"by_name", true}}));
}

TEST(ControlProtocol, IdAndParamsAreOptional) {
  auto r = parse_ok(R"({"method":"status"})");
  EXPECT_TRUE(r.id.is_null());
  EXPECT_EQ(r.method, "status");
  EXPECT_TRUE(r.params.is_object());
  EXPECT_TRUE(r.params.empty());
}

TEST(ControlProtocol, AnyIdIsKept) {
  EXPECT_EQ(parse_ok(R"({"id":"abc","method":"peers"})").id, json("abc"));
  EXPECT_EQ(parse_ok(R"({"id":[1,{"x":2}],"method":"peers"})").id, json::parse(R"([1,{"x":2}])"));
  EXPECT_EQ(parse_ok(R"({"id":-1.5,"method":"peers"})").id, json(-1.5));
  EXPECT_TRUE(parse_ok(R"({"id":null,"method":"peers"})").id.is_null());
}

TEST(ControlProtocol, UnicodeSurvives) {
  auto r = parse_ok(R"({"id":"é\u00e9","method":"expose.rm","params":{"name":"caf\u00e9 ☕"}})");
  EXPECT_EQ(r.id, json("\xc3\xa9\xc3\xa9"));
  EXPECT_EQ(r.params["name"], json("caf\xc3\xa9 \xe2\x98\x95"));
  // And it goes back out as valid JSON with the same text.
  auto back = json::parse(control_ok_line(r.id, r.params));
  EXPECT_EQ(back["id"], r.id);
  EXPECT_EQ(back["result"], r.params);
}

TEST(ControlProtocol, MalformedJson) {
  for (std::string line : {"", "{", "{\"method\":\"status\"", "status", "{'method':'status'}", "{\"method\":\"a\"}x",
                           "{\"method\":\"\xff\"}"}) {
    auto e = parse_err(line);
    EXPECT_EQ(e.message, "request is not valid JSON") << line;
    EXPECT_TRUE(e.id.is_null());
  }
}

TEST(ControlProtocol, NonObject) {
  EXPECT_EQ(parse_err("[1,2]").message, "request must be a JSON object, got array");
  EXPECT_EQ(parse_err("\"status\"").message, "request must be a JSON object, got string");
  EXPECT_EQ(parse_err("42").message, "request must be a JSON object, got number");
  EXPECT_EQ(parse_err("null").message, "request must be a JSON object, got null");
}

TEST(ControlProtocol, MethodMissingOrNotString) {
  auto e = parse_err(R"({"id":3})");
  EXPECT_EQ(e.message, "request has no \"method\"");
  EXPECT_EQ(e.id, json(3));  // the error still echoes the id
  e = parse_err(R"({"id":"x","method":5})");
  EXPECT_EQ(e.message, "\"method\" must be a string, got number");
  EXPECT_EQ(e.id, json("x"));
  EXPECT_EQ(parse_err(R"({"method":null})").message, "\"method\" must be a string, got null");
  EXPECT_EQ(parse_err(R"({"method":["status"]})").message, "\"method\" must be a string, got array");
}

TEST(ControlProtocol, ParamsMustBeObject) {
  auto e = parse_err(R"({"id":9,"method":"tunnel.rm","params":["127.0.0.1:80"]})");
  EXPECT_EQ(e.message, "\"params\" must be an object, got array");
  EXPECT_EQ(e.id, json(9));
  EXPECT_EQ(parse_err(R"({"method":"status","params":"x"})").message, "\"params\" must be an object, got string");
  EXPECT_EQ(parse_err(R"({"method":"status","params":null})").message, "\"params\" must be an object, got null");
}

TEST(ControlProtocol, DepthIsCapped) {
  auto nested = [](size_t depth) {
    return R"({"method":"status","id":)" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
  };
  EXPECT_EQ(parse_ok(nested(kMaxControlRequestDepth)).method, "status");
  EXPECT_EQ(parse_err(nested(kMaxControlRequestDepth + 1)).message, "request nests deeper than 32 levels");
  // Brackets inside strings (even after escaped quotes) do not count.
  std::string in_string = R"({"method":"status","id":"\")" + std::string(100, '[') + "\"}";
  EXPECT_EQ(parse_ok(in_string).id, json("\"" + std::string(100, '[')));
}

TEST(ControlProtocol, ResponseLines) {
  EXPECT_EQ(control_ok_line(json(1), json{{"subscribed", true}}), "{\"id\":1,\"ok\":true,\"result\":{\"subscribed\":true}}\n");
  EXPECT_EQ(control_ok_line(json(nullptr), json::object()), "{\"id\":null,\"ok\":true,\"result\":{}}\n");
  EXPECT_EQ(control_error_line(json("a"), "bad \"x\"\nnext"), "{\"id\":\"a\",\"ok\":false,\"error\":\"bad \\\"x\\\"\\nnext\"}\n");
  EXPECT_EQ(control_event_line(json{{"event", "peer_connected"}, {"peer_id", "12D3"}}),
            "{\"event\":\"peer_connected\",\"peer_id\":\"12D3\"}\n");
  EXPECT_EQ(control_too_large_message(), "request too large (limit 65536 bytes)");
}

TEST(ControlProtocol, InvalidUtf8InOutputIsReplacedNotThrown) {
  std::string line = control_error_line(json(nullptr), "bad \xff byte");
  auto back = json::parse(line, nullptr, false);
  ASSERT_TRUE(back.is_object()) << line;
  EXPECT_EQ(back["error"], json("bad \xef\xbf\xbd byte"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(ControlLineReader, SplitsAcrossFeeds) {
  ControlLineReader r;
  auto lines = lines_of(r, {"{\"a\":", "1}\n{\"b\"", ":2}\n\n", "tail"});
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", ""}));
  EXPECT_EQ(r.buffered(), 4u);
  EXPECT_FALSE(r.too_large());
  r.feed("\n");
  EXPECT_EQ(r.next(), std::optional<std::string>("tail"));
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(ControlLineReader, ByteByByte) {
  ControlLineReader r;
  std::vector<std::string> chunks;
  for (char c : "one\ntwo\r\nthree\n"s) chunks.emplace_back(1, c);
  EXPECT_EQ(lines_of(r, chunks), (std::vector<std::string>{"one", "two", "three"}));
}

TEST(ControlLineReader, DropsOneTrailingCarriageReturn) {
  ControlLineReader r;
  EXPECT_EQ(lines_of(r, {"a\r\nb\r\r\n\r\n"}), (std::vector<std::string>{"a", "b\r", ""}));
}

TEST(ControlLineReader, LineExactlyAtLimitIsAccepted) {
  ControlLineReader r;
  std::string line(kMaxControlRequestBytes, 'x');
  auto lines = lines_of(r, {line.substr(0, 1000), line.substr(1000), "\n"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), kMaxControlRequestBytes);
  EXPECT_FALSE(r.too_large());
}

TEST(ControlLineReader, OneOverLimitWithNewlineIsTooLarge) {
  ControlLineReader r;
  r.feed(std::string(kMaxControlRequestBytes + 1, 'x') + "\n{\"method\":\"status\"}\n");
  EXPECT_FALSE(r.next().has_value());
  EXPECT_TRUE(r.too_large());
  // Stopped for good: later bytes are ignored.
  r.feed("{\"method\":\"status\"}\n");
  EXPECT_FALSE(r.next().has_value());
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(ControlLineReader, OverLimitWithoutNewlineIsTooLargeAtOnce) {
  ControlLineReader r;
  r.feed(std::string(kMaxControlRequestBytes, 'x'));
  EXPECT_FALSE(r.next().has_value());
  EXPECT_FALSE(r.too_large());  // could still end right here
  r.feed("y");
  EXPECT_TRUE(r.too_large());  // known before any next(), and nothing more is kept
  EXPECT_EQ(r.buffered(), 0u);
  EXPECT_FALSE(r.next().has_value());
}

TEST(ControlLineReader, LinesBeforeAnOversizedOneAreStillReturned) {
  ControlLineReader r(8);
  r.feed("short\n0123456789abcdef");
  EXPECT_EQ(r.next(), std::optional<std::string>("short"));
  EXPECT_FALSE(r.next().has_value());
  EXPECT_TRUE(r.too_large());
}

TEST(ControlLineReader, SmallLimitBoundary) {
  ControlLineReader ok(4);
  EXPECT_EQ(lines_of(ok, {"abcd\n"}), (std::vector<std::string>{"abcd"}));
  // The '\r' of a CRLF counts toward the limit: it is part of the bytes before '\n'.
  ControlLineReader crlf(4);
  EXPECT_TRUE(lines_of(crlf, {"abcd\r\n"}).empty());
  EXPECT_TRUE(crlf.too_large());
}

TEST(ControlLineReader, ManyLinesDoNotGrowTheBuffer) {
  ControlLineReader r(64);
  for (int i = 0; i < 10000; ++i) {
    r.feed("{\"method\":\"status\"}\n{\"meth");
    while (r.next()) {
    }
    r.feed("od\":\"peers\"}\n");
    while (r.next()) {
    }
    ASSERT_EQ(r.buffered(), 0u);
  }
  EXPECT_FALSE(r.too_large());
}
