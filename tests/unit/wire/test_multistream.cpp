#include "punchgate/wire/multistream.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

using namespace punchgate;
using namespace std::string_literals;

namespace {

const Bytes kHeader = "\x13/multistream/1.0.0\n"s;  // 0x13 = 18 chars + newline
const Bytes kNa = "\x03na\n"s;
const Bytes kLs = "\x03ls\n"s;
const Bytes kA = "\x03/a\n"s;
const Bytes kB = "\x03/b\n"s;
const Bytes kC = "\x03/c\n"s;

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST(Multistream, MessageEncoding) {
  EXPECT_EQ(multistream_message(kMultistreamHeader), kHeader);
  EXPECT_EQ(multistream_message("na"), kNa);
  EXPECT_EQ(multistream_message("ls"), kLs);
  EXPECT_EQ(multistream_message("/ipfs/ping/1.0.0"), "\x11/ipfs/ping/1.0.0\n"s);
  // 200 chars + newline = 201 = 0xc9 0x01
  EXPECT_EQ(multistream_message(std::string(200, 'p')).substr(0, 2), "\xc9\x01"s);
}

TEST(Multistream, LsReplyEncoding) {
  // go-multistream / rust-libp2p layout: outer length, nested lines, trailing newline.
  EXPECT_EQ(multistream_ls_reply({"/a", "/b"}), "\x09"s + kA + kB + "\n");
  EXPECT_EQ(multistream_ls_reply({}), "\x01\n"s);
  auto parsed = parse_multistream_ls_reply(kA + kB + "\n");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_FALSE(parse_multistream_ls_reply(kA).ok());               // no trailing newline
  EXPECT_FALSE(parse_multistream_ls_reply("\x05/a\n\n"s).ok());     // truncated entry
}

TEST(MultistreamDialer, StartPipelinesHeaderAndFirstProposal) {
  MultistreamDialer d({"/ipfs/ping/1.0.0", "/b"});
  EXPECT_EQ(d.start(), kHeader + "\x11/ipfs/ping/1.0.0\n"s);
  EXPECT_EQ(d.state(), MultistreamState::Pending);
  EXPECT_EQ(d.start(), "");  // only once
}

TEST(MultistreamDialer, SelectedOnEcho) {
  MultistreamDialer d({"/a"});
  (void)d.start();
  auto out = d.feed(kHeader + kA);
  EXPECT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.protocol, "/a");
  EXPECT_EQ(out.to_send, "");
  EXPECT_EQ(out.leftover, "");
  EXPECT_EQ(d.protocol(), "/a");
}

TEST(MultistreamDialer, NaThenSecondProposal) {
  MultistreamDialer d({"/a", "/b"});
  EXPECT_EQ(d.start(), kHeader + kA);
  auto out = d.feed(kHeader + kNa);
  EXPECT_EQ(out.state, MultistreamState::Pending);
  EXPECT_EQ(out.to_send, kB);
  out = d.feed(kB);
  EXPECT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.protocol, "/b");
}

TEST(MultistreamDialer, NoneSupported) {
  MultistreamDialer d({"/a", "/b"});
  (void)d.start();
  auto out = d.feed(kHeader + kNa + kNa);
  EXPECT_EQ(out.state, MultistreamState::Failed);
  EXPECT_EQ(out.error, "peer supports none of /a, /b");
  EXPECT_EQ(out.to_send, kB);  // the second proposal was produced before the final na
  // Failure is sticky.
  EXPECT_EQ(d.feed("x").state, MultistreamState::Failed);
}

TEST(MultistreamDialer, LeftoverAfterAcceptIsPreserved) {
  MultistreamDialer d({"/a"});
  (void)d.start();
  auto out = d.feed(kHeader + kA + "app\x00data"s);
  ASSERT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.leftover, "app\x00data"s);
  // Later bytes pass straight through.
  out = d.feed("more");
  EXPECT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.leftover, "more");
}

TEST(MultistreamDialer, WrongHeaderRejected) {
  MultistreamDialer d({"/a"});
  (void)d.start();
  auto out = d.feed("\x13/multistream/2.0.0\n"s + kA);
  EXPECT_EQ(out.state, MultistreamState::Failed);
  EXPECT_TRUE(contains(out.error, "unsupported multistream header '/multistream/2.0.0'")) << out.error;
}

TEST(MultistreamDialer, UnexpectedReplyRejected) {
  MultistreamDialer d({"/a"});
  (void)d.start();
  auto out = d.feed(kHeader + kB);
  EXPECT_EQ(out.state, MultistreamState::Failed);
  EXPECT_TRUE(contains(out.error, "unexpected reply '/b'")) << out.error;
}

TEST(MultistreamDialer, OversizedLineRejectedFromPrefix) {
  MultistreamDialer d({"/a"});
  (void)d.start();
  auto out = d.feed(kHeader + "\x81\x08"s);  // 1025: one over the cap, payload not yet sent
  EXPECT_EQ(out.state, MultistreamState::Failed);
  EXPECT_TRUE(contains(out.error, "exceeds")) << out.error;
}

TEST(MultistreamDialer, UnterminatedLineRejected) {
  MultistreamDialer d({"/a"});
  (void)d.start();
  auto out = d.feed(kHeader + "\x03/ab"s);
  EXPECT_EQ(out.state, MultistreamState::Failed);
  EXPECT_TRUE(contains(out.error, "newline")) << out.error;
}

TEST(MultistreamDialer, EmptyAndOverlongVarintRejected) {
  {
    MultistreamDialer d({"/a"});
    (void)d.start();
    EXPECT_EQ(d.feed("\x00"s).state, MultistreamState::Failed);
  }
  {
    MultistreamDialer d({"/a"});
    (void)d.start();
    EXPECT_EQ(d.feed(Bytes(10, '\xff')).state, MultistreamState::Failed);
  }
}

TEST(MultistreamDialer, InvalidProposalsFailAtStart) {
  for (const auto& list : std::vector<std::vector<std::string>>{
           {}, {""}, {"/a\n/b"}, {"na"}, {"ls"}, {std::string(1024, 'x')}, std::vector<std::string>(33, "/a")}) {
    MultistreamDialer d(list);
    EXPECT_EQ(d.start(), "");
    EXPECT_EQ(d.state(), MultistreamState::Failed);
  }
  MultistreamDialer ok({std::string(1023, 'x')});  // 1024 with the newline: exactly the cap
  EXPECT_NE(ok.start(), "");
}

TEST(MultistreamDialer, FeedBeforeStartFails) {
  MultistreamDialer d({"/a"});
  EXPECT_EQ(d.feed(kHeader).state, MultistreamState::Failed);
}

TEST(MultistreamListener, SelectsAfterNa) {
  MultistreamListener l({"/a"});
  auto out = l.feed(kHeader + kC + kA + "data");
  EXPECT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.protocol, "/a");
  EXPECT_EQ(out.to_send, kHeader + kNa + kA);
  EXPECT_EQ(out.leftover, "data");
  out = l.feed("tail");
  EXPECT_EQ(out.leftover, "tail");
  EXPECT_EQ(out.to_send, "");
}

TEST(MultistreamListener, HeaderAloneAnswersHeader) {
  MultistreamListener l({"/a"});
  auto out = l.feed(kHeader);
  EXPECT_EQ(out.state, MultistreamState::Pending);
  EXPECT_EQ(out.to_send, kHeader);
}

TEST(MultistreamListener, LsListsProtocols) {
  MultistreamListener l({"/a", "/b"});
  auto out = l.feed(kHeader + kLs);
  EXPECT_EQ(out.state, MultistreamState::Pending);
  EXPECT_EQ(out.to_send, kHeader + "\x09"s + kA + kB + "\n");
  out = l.feed(kB);
  EXPECT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.to_send, kB);
}

TEST(MultistreamListener, PredicateWithAdvertisedList) {
  MultistreamListener l([](std::string_view p) { return p.starts_with("/kad/"); }, {"/kad/1"});
  auto out = l.feed(kHeader + kLs + "\x08/kad/77\n"s);
  EXPECT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.protocol, "/kad/77");
  EXPECT_EQ(out.to_send, kHeader + multistream_ls_reply({"/kad/1"}) + "\x08/kad/77\n"s);
}

TEST(MultistreamListener, ReservedWordsNeverSelected) {
  MultistreamListener l([](std::string_view) { return true; }, {});
  auto out = l.feed(kHeader + kNa + kHeader + "\x01\n"s + kA);
  EXPECT_EQ(out.state, MultistreamState::Selected);
  EXPECT_EQ(out.to_send, kHeader + kNa + kNa + kNa + kA);
}

TEST(MultistreamListener, TooManyProposals) {
  MultistreamListener l({"/a"});
  Bytes in = kHeader;
  for (size_t i = 0; i < kMaxMultistreamProposals; ++i) in += kC;
  auto out = l.feed(in);
  EXPECT_EQ(out.state, MultistreamState::Pending);
  out = l.feed(kA);  // the 33rd request, even if supported
  EXPECT_EQ(out.state, MultistreamState::Failed);
  EXPECT_TRUE(contains(out.error, "more than 32 proposals")) << out.error;
}

TEST(MultistreamListener, WrongHeaderAndBadLinesRejected) {
  {
    MultistreamListener l({"/a"});
    auto out = l.feed("\x13/multistream/2.0.0\n"s);
    EXPECT_EQ(out.state, MultistreamState::Failed);
    EXPECT_EQ(out.to_send, "");
  }
  {
    MultistreamListener l({"/a"});
    EXPECT_EQ(l.feed(kHeader + "\x81\x08"s).state, MultistreamState::Failed);
  }
  {
    MultistreamListener l({"/a"});
    EXPECT_EQ(l.feed(kHeader + "\x02/a"s).state, MultistreamState::Failed);
  }
  {
    // Exactly 1024 bytes including the newline is accepted (and refused with na).
    MultistreamListener l({"/a"});
    auto out = l.feed(kHeader + multistream_message(std::string(1023, 'x')));
    EXPECT_EQ(out.state, MultistreamState::Pending);
    EXPECT_EQ(out.to_send, kHeader + kNa);
  }
}

namespace {

struct Conversation {
  MultistreamOutcome dialer_last, listener_last;
  Bytes dialer_app, listener_app;  // leftovers each side received
};

// Runs a dialer and listener against each other, delivering `chunk` bytes per feed.
Conversation converse(MultistreamDialer& d, MultistreamListener& l, size_t chunk, const Bytes& dialer_app_data,
                      const Bytes& listener_app_data) {
  Conversation c;
  Bytes to_listener = d.start();
  Bytes to_dialer;
  for (int rounds = 0; rounds < 100000 && (!to_listener.empty() || !to_dialer.empty()); ++rounds) {
    if (!to_listener.empty()) {
      size_t n = std::min(chunk, to_listener.size());
      auto out = l.feed(BytesView(to_listener).substr(0, n));
      to_listener.erase(0, n);
      c.listener_app += out.leftover;
      to_dialer += out.to_send;
      if (out.state == MultistreamState::Selected && c.listener_last.state != MultistreamState::Selected) {
        to_dialer += listener_app_data;
      }
      c.listener_last.state = out.state;
      if (!out.protocol.empty()) c.listener_last.protocol = out.protocol;
      if (!out.error.empty()) c.listener_last.error = out.error;
    }
    if (!to_dialer.empty()) {
      size_t n = std::min(chunk, to_dialer.size());
      auto out = d.feed(BytesView(to_dialer).substr(0, n));
      to_dialer.erase(0, n);
      c.dialer_app += out.leftover;
      to_listener += out.to_send;
      if (out.state == MultistreamState::Selected && c.dialer_last.state != MultistreamState::Selected) {
        to_listener += dialer_app_data;
      }
      c.dialer_last.state = out.state;
      if (!out.protocol.empty()) c.dialer_last.protocol = out.protocol;
      if (!out.error.empty()) c.dialer_last.error = out.error;
    }
  }
  return c;
}

}  // namespace

TEST(Multistream, DialerAndListenerAgree) {
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{1000}}) {
    MultistreamDialer d({"/x", "/y", "/b"});
    MultistreamListener l({"/a", "/b"});
    auto c = converse(d, l, chunk, "hello listener", "hello dialer");
    EXPECT_EQ(c.dialer_last.state, MultistreamState::Selected) << chunk;
    EXPECT_EQ(c.listener_last.state, MultistreamState::Selected) << chunk;
    EXPECT_EQ(c.dialer_last.protocol, "/b");
    EXPECT_EQ(c.listener_last.protocol, "/b");
    EXPECT_EQ(c.listener_app, "hello listener") << chunk;
    EXPECT_EQ(c.dialer_app, "hello dialer") << chunk;
  }
}

TEST(Multistream, DialerAndListenerDisagree) {
  MultistreamDialer d({"/x", "/y"});
  MultistreamListener l({"/a"});
  auto c = converse(d, l, 1, "", "");
  EXPECT_EQ(c.dialer_last.state, MultistreamState::Failed);
  EXPECT_EQ(c.dialer_last.error, "peer supports none of /x, /y");
  EXPECT_EQ(l.state(), MultistreamState::Pending);  // the dialer gives up; the listener just sees EOF
}

TEST(Multistream, ByteAtATimeExactBytes) {
  MultistreamListener l({"/a"});
  Bytes wire = kHeader + kC + kA + "z";
  Bytes sent, leftover;
  MultistreamState st = MultistreamState::Pending;
  for (char ch : wire) {
    auto out = l.feed(BytesView(&ch, 1));
    sent += out.to_send;
    leftover += out.leftover;
    st = out.state;
  }
  EXPECT_EQ(st, MultistreamState::Selected);
  EXPECT_EQ(sent, kHeader + kNa + kA);
  EXPECT_EQ(leftover, "z");
}
