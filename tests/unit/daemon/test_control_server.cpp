// ControlServer on a real libuv loop with a socket in a fresh temp directory, driven by raw
// non-blocking sockets on the test thread (the loop runs in between) and by the blocking
// control_client functions on a helper thread.
#include "daemon/control_client.hpp"
#include "daemon/control_server.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace punchgate;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Only there to fail instead of hang: every wait ends long before it when the code works.
constexpr auto kGiveUp = 10s;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pgctl.XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    if (made) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class Loop {
 public:
  Loop() { uv_loop_init(&loop_); }
  ~Loop() {
    // Everything closed must be released: run until no handle is left, then close the loop.
    auto deadline = std::chrono::steady_clock::now() + kGiveUp;
    while (uv_loop_alive(&loop_) && std::chrono::steady_clock::now() < deadline) uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle was left open";
  }
  uv_loop_t* get() { return &loop_; }
  void turn() { uv_run(&loop_, UV_RUN_NOWAIT); }

  template <typename Pred>
  bool run_until(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + kGiveUp;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(200us);
    }
    return true;
  }

 private:
  uv_loop_t loop_{};
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0;
  return st.st_mode;
}

sockaddr_un unix_addr(const fs::path& p) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, p.c_str(), sizeof(a.sun_path) - 1);
  return a;
}

// A client socket on the test thread. Non-blocking: every wait turns the loop, so the server
// makes progress in between.
class RawClient {
 public:
  RawClient(Loop& loop, const fs::path& path) : loop_(loop) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a = unix_addr(path);
    // Connecting to a listening Unix socket completes at once (it waits in the backlog).
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~RawClient() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }

  bool send(std::string data) {
    std::string_view rest = data;
    return loop_.run_until([&] {
      ssize_t n = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n > 0) rest.remove_prefix(static_cast<size_t>(n));
      return rest.empty() || (n < 0 && errno != EAGAIN);
    }) && rest.empty();
  }

  // The next line (without '\n'), or nullopt on EOF / error / giving up.
  std::optional<std::string> line() {
    std::optional<std::string> out;
    loop_.run_until([&] {
      if (take_line(out)) return true;
      return !fill();
    });
    if (!out) take_line(out);
    return out;
  }
  std::optional<json> json_line() {
    auto l = line();
    if (!l) return std::nullopt;
    json j = json::parse(*l, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << *l;
    return j;
  }

  // True once the server closed the connection (after any buffered lines were read).
  bool wait_closed() {
    return loop_.run_until([&] { return !fill(); }) && eof_;
  }
  // Nothing arrives while the loop turns a few times.
  bool quiet() {
    for (int i = 0; i < 20; ++i) {
      loop_.turn();
      std::this_thread::sleep_for(1ms);
      fill();
    }
    return buf_.empty();
  }

 private:
  bool take_line(std::optional<std::string>& out) {
    auto nl = buf_.find('\n');
    if (nl == std::string::npos) return false;
    out = buf_.substr(0, nl);
    buf_.erase(0, nl + 1);
    return true;
  }
  // Reads what is there; false once the connection ended.
  bool fill() {
    char tmp[65536];
    while (true) {
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n > 0) {
        buf_.append(tmp, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        eof_ = true;  // EOF, or ECONNRESET when the server closed with our bytes unread
        return false;
      }
      return true;
    }
  }

  Loop& loop_;
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

class FakeHandler : public ControlHandler {
 public:
  Result<json> call(const std::string& method, const json& params) override {
    calls.push_back(method);
    if (method == "echo") return json{{"method", method}, {"params", params}};
    if (method == "publish") {
      server->publish(json{{"event", "from_handler"}, {"n", params.value("n", 0)}});
      return json{{"published", true}};
    }
    if (method == "throw") return json{{"flag", params.value("flag", false)}};  // throws on a non-bool
    if (method == "big") return json{{"blob", std::string(params.value("size", size_t{0}), 'b')}};
    return make_error("unknown method \"{}\"", method);
  }
  ControlServer* server = nullptr;
  std::vector<std::string> calls;
};

// Runs `fn` on a thread (the blocking client) while the loop turns on this one.
template <typename T, typename Fn>
std::optional<T> on_thread(Loop& loop, Fn fn) {
  std::optional<T> out;
  std::atomic<bool> done{false};
  std::thread th([&] {
    out.emplace(fn());
    done = true;
  });
  bool finished = loop.run_until([&] { return done.load(); });
  th.join();  // the client's own timeouts end it even when the loop gave up
  EXPECT_TRUE(finished);
  return out;
}

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp.path().empty());
    sock = tmp.path() / "punchgate" / "control.sock";
  }
  std::unique_ptr<ControlServer> make_server(ControlServerLimits limits = {}) {
    auto s = std::make_unique<ControlServer>(loop.get(), sock, handler, limits);
    handler.server = s.get();
    return s;
  }

  TempDir tmp;
  Loop loop;
  FakeHandler handler;
  fs::path sock;
};

}  // namespace

TEST_F(ControlServerTest, CreatesPrivateDirectoryAndSocket) {
  auto server = make_server();
  mode_t old = ::umask(0);  // a permissive umask must not leak into the modes
  Status st = server->start();
  ::umask(old);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(mode_of(sock.parent_path()) & 07777, 0700u);
  EXPECT_TRUE(S_ISSOCK(mode_of(sock)));
  EXPECT_EQ(mode_of(sock) & 07777, 0600u);
  server->close();
  EXPECT_FALSE(fs::exists(sock));
  server->close();  // idempotent
}

TEST_F(ControlServerTest, TightensExistingPunchgateDirectoryOnly) {
  ASSERT_EQ(::mkdir(sock.parent_path().c_str(), 0755), 0);
  ::chmod(sock.parent_path().c_str(), 0755);
  auto server = make_server();
  ASSERT_TRUE(server->start());
  EXPECT_EQ(mode_of(sock.parent_path()) & 07777, 0700u);

  // A directory the user chose for --control-socket keeps its mode; the socket is 0600 anyway.
  fs::path other = tmp.path() / "elsewhere";
  ASSERT_EQ(::mkdir(other.c_str(), 0755), 0);
  ::chmod(other.c_str(), 0755);
  ControlServer second(loop.get(), other / "pg.sock", handler);
  ASSERT_TRUE(second.start());
  EXPECT_EQ(mode_of(other) & 07777, 0755u);
  EXPECT_EQ(mode_of(other / "pg.sock") & 07777, 0600u);
}

TEST_F(ControlServerTest, CallRoundTripThroughClient) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  auto r = on_thread<ControlResult<json>>(loop, [&] { return control_call(sock, "echo", json{{"a", 1}}); });
  ASSERT_TRUE(r && *r) << (*r).error().message;
  EXPECT_EQ(**r, (json{{"method", "echo"}, {"params", {{"a", 1}}}}));

  // The whole response object, with the client's id.
  auto whole = on_thread<ControlResult<json>>(loop, [&] { return control_request(sock, "echo"); });
  ASSERT_TRUE(whole && *whole);
  EXPECT_EQ(**whole, (json{{"id", 1}, {"ok", true}, {"result", {{"method", "echo"}, {"params", json::object()}}}}));
  EXPECT_EQ(handler.calls, (std::vector<std::string>{"echo", "echo"}));
}

TEST_F(ControlServerTest, HandlerErrorsReachTheClient) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  auto r = on_thread<ControlResult<json>>(loop, [&] { return control_call(sock, "nope"); });
  ASSERT_TRUE(r && !*r);
  EXPECT_EQ((*r).error().kind, ControlCallError::Failed);
  EXPECT_EQ((*r).error().message, "unknown method \"nope\"");

  auto whole = on_thread<ControlResult<json>>(loop, [&] { return control_request(sock, "nope"); });
  ASSERT_TRUE(whole && *whole);
  EXPECT_EQ(**whole, (json{{"id", 1}, {"ok", false}, {"error", "unknown method \"nope\""}}));
}

TEST_F(ControlServerTest, MalformedRequestGetsErrorAndConnectionStaysUsable) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  RawClient c(loop, sock);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("this is not json\n"));
  EXPECT_EQ(c.json_line(), (json{{"id", nullptr}, {"ok", false}, {"error", "request is not valid JSON"}}));
  ASSERT_TRUE(c.send("{\"id\":\"k\",\"method\":7}\n"));
  EXPECT_EQ(c.json_line(), (json{{"id", "k"}, {"ok", false}, {"error", "\"method\" must be a string, got number"}}));
  ASSERT_TRUE(c.send("[]\n\n   \r\n{\"id\":\"s\",\"method\":\"echo\",\"params\":{\"x\":\"\\u00e9\"}}\r\n"));
  // The blank lines were skipped: the next answer is the array's error, then the echo.
  EXPECT_EQ(c.json_line(), (json{{"id", nullptr}, {"ok", false}, {"error", "request must be a JSON object, got array"}}));
  EXPECT_EQ(c.json_line(),
            (json{{"id", "s"}, {"ok", true}, {"result", {{"method", "echo"}, {"params", {{"x", "\xc3\xa9"}}}}}}));
  EXPECT_TRUE(c.quiet());
  EXPECT_EQ(server->client_count(), 1u);
}

TEST_F(ControlServerTest, PipelinedRequestsAnsweredInOrder) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  RawClient c(loop, sock);
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += json{{"id", i}, {"method", "echo"}}.dump() + "\n";
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 50; ++i) {
    auto j = c.json_line();
    ASSERT_TRUE(j);
    EXPECT_EQ((*j)["id"], json(i));
    EXPECT_EQ((*j)["ok"], json(true));
  }
}

TEST_F(ControlServerTest, HandlerExceptionBecomesErrorResponse) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  RawClient c(loop, sock);
  ASSERT_TRUE(c.send("{\"id\":2,\"method\":\"throw\",\"params\":{\"flag\":\"yes\"}}\n"));
  auto j = c.json_line();
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["id"], json(2));
  EXPECT_EQ((*j)["ok"], json(false));
  EXPECT_EQ((*j)["error"].get<std::string>().rfind("internal error in throw: ", 0), 0u) << *j;
  ASSERT_TRUE(c.send("{\"id\":3,\"method\":\"throw\",\"params\":{\"flag\":true}}\n"));
  EXPECT_EQ(c.json_line(), (json{{"id", 3}, {"ok", true}, {"result", {{"flag", true}}}}));
}

TEST_F(ControlServerTest, OversizedRequestGetsErrorThenClose) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  RawClient c(loop, sock);
  ASSERT_TRUE(c.send(std::string(kMaxControlRequestBytes + 100, ' ')));  // no newline at all
  EXPECT_EQ(c.json_line(), (json{{"id", nullptr}, {"ok", false}, {"error", "request too large (limit 65536 bytes)"}}));
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(loop.run_until([&] { return server->client_count() == 0; }));
}

TEST_F(ControlServerTest, RequestExactlyAtLimitIsServed) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  RawClient c(loop, sock);
  std::string req = "{\"id\":1,\"method\":\"echo\"}";
  req.insert(1, kMaxControlRequestBytes - req.size(), ' ');  // JSON whitespace up to the limit
  ASSERT_EQ(req.size(), kMaxControlRequestBytes);
  ASSERT_TRUE(c.send(req + "\n"));
  auto j = c.json_line();
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["ok"], json(true));

  // One byte more is refused, even with its newline.
  req.insert(1, " ");
  ASSERT_TRUE(c.send(req + "\n"));
  EXPECT_EQ(c.json_line(), (json{{"id", nullptr}, {"ok", false}, {"error", "request too large (limit 65536 bytes)"}}));
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(ControlServerTest, LargeResponseIsDelivered) {
  auto server = make_server(ControlServerLimits{32, 64 * 1024});
  ASSERT_TRUE(server->start());
  // Bigger than the backlog limit and the socket buffer: one answer to an idle queue goes out.
  auto r = on_thread<ControlResult<json>>(loop, [&] { return control_call(sock, "big", json{{"size", 3000000}}); });
  ASSERT_TRUE(r && *r) << (*r).error().message;
  EXPECT_EQ((**r)["blob"].get<std::string>().size(), 3000000u);
}

TEST_F(ControlServerTest, SubscriberGetsEventsWhileAnotherClientIsServed) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  RawClient sub(loop, sock);
  ASSERT_TRUE(sub.send("{\"id\":\"sub\",\"method\":\"subscribe\"}\n"));
  EXPECT_EQ(sub.json_line(), (json{{"id", "sub"}, {"ok", true}, {"result", {{"subscribed", true}}}}));
  EXPECT_EQ(server->subscriber_count(), 1u);
  EXPECT_TRUE(handler.calls.empty());  // subscribe never reaches the handler

  auto r = on_thread<ControlResult<json>>(loop, [&] { return control_call(sock, "publish", json{{"n", 5}}); });
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(**r, (json{{"published", true}}));
  EXPECT_EQ(sub.json_line(), (json{{"event", "from_handler"}, {"n", 5}}));

  server->publish(json{{"event", "peer_connected"}, {"peer_id", "12D3KooW"}});
  EXPECT_EQ(sub.line(), std::optional<std::string>("{\"event\":\"peer_connected\",\"peer_id\":\"12D3KooW\"}"));

  // A plain client gets no events.
  RawClient plain(loop, sock);
  ASSERT_TRUE(plain.send("{\"method\":\"echo\"}\n"));
  ASSERT_TRUE(plain.json_line());
  server->publish(json{{"event", "tick"}});
  EXPECT_EQ(sub.json_line(), (json{{"event", "tick"}}));
  EXPECT_TRUE(plain.quiet());

  sub.close();
  EXPECT_TRUE(loop.run_until([&] { return server->subscriber_count() == 0; }));
}

TEST_F(ControlServerTest, ClientSubscribeReceivesEvents) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  std::vector<json> events;
  std::atomic<bool> done{false};
  ControlResult<void> result = ControlCallError{ControlCallError::Failed, "not run"};
  std::thread th([&] {
    result = control_subscribe(
        sock,
        [&](const json& ev) {
          events.push_back(ev);
          return events.size() < 2;
        },
        kGiveUp);
    done = true;
  });
  ASSERT_TRUE(loop.run_until([&] { return server->subscriber_count() == 1; }));
  server->publish(json{{"event", "a"}});
  server->publish(json{{"event", "b"}, {"x", 1}});
  EXPECT_TRUE(loop.run_until([&] { return done.load(); }));
  th.join();
  EXPECT_TRUE(result) << (result ? "" : result.error().message);
  EXPECT_EQ(events, (std::vector<json>{json{{"event", "a"}}, json{{"event", "b"}, {"x", 1}}}));
}

TEST_F(ControlServerTest, ClientSubscribeReportsDaemonGone) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  std::atomic<bool> done{false};
  ControlResult<void> result;
  std::thread th([&] {
    result = control_subscribe(sock, [](const json&) { return true; }, kGiveUp);
    done = true;
  });
  ASSERT_TRUE(loop.run_until([&] { return server->subscriber_count() == 1; }));
  server->close();
  EXPECT_TRUE(loop.run_until([&] { return done.load(); }));
  th.join();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ControlCallError::Failed);
  EXPECT_EQ(result.error().message, "punchgate closed the control connection");
}

TEST_F(ControlServerTest, SubscriberThatStopsReadingIsDisconnected) {
  auto server = make_server(ControlServerLimits{32, 64 * 1024});
  ASSERT_TRUE(server->start());
  RawClient slow(loop, sock);
  ASSERT_TRUE(slow.send("{\"method\":\"subscribe\"}\n"));
  ASSERT_TRUE(slow.json_line());
  ASSERT_EQ(server->subscriber_count(), 1u);
  const json ev = {{"event", "bulk"}, {"pad", std::string(8192, 'p')}};
  size_t published = 0;
  // Socket buffers take a few hundred KiB, then the backlog limit trips; 64 MiB means it never did.
  while (server->subscriber_count() == 1 && published < 64u * 1024 * 1024) {
    server->publish(ev);
    published += 8192;
    loop.turn();
  }
  EXPECT_EQ(server->subscriber_count(), 0u);
  EXPECT_LT(published, 8u * 1024 * 1024);
  // The server carries on for everyone else.
  RawClient next(loop, sock);
  ASSERT_TRUE(next.send("{\"id\":1,\"method\":\"echo\"}\n"));
  auto j = next.json_line();
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["ok"], json(true));
}

TEST_F(ControlServerTest, ClientsBeyondTheLimitAreToldAndClosed) {
  auto server = make_server(ControlServerLimits{2, 1024 * 1024});
  ASSERT_TRUE(server->start());
  RawClient a(loop, sock), b(loop, sock);
  ASSERT_TRUE(loop.run_until([&] { return server->client_count() == 2; }));
  RawClient c(loop, sock);
  EXPECT_EQ(c.json_line(), (json{{"id", nullptr}, {"ok", false}, {"error", "too many control clients (limit 2)"}}));
  EXPECT_TRUE(c.wait_closed());
  ASSERT_TRUE(a.send("{\"id\":1,\"method\":\"echo\"}\n"));
  ASSERT_TRUE(a.json_line());
  // A freed slot is usable again.
  b.close();
  ASSERT_TRUE(loop.run_until([&] { return server->client_count() == 1; }));
  RawClient d(loop, sock);
  ASSERT_TRUE(d.send("{\"id\":1,\"method\":\"echo\"}\n"));
  auto j = d.json_line();
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["ok"], json(true));
}

TEST_F(ControlServerTest, StaleSocketFileIsReplaced) {
  ASSERT_EQ(::mkdir(sock.parent_path().c_str(), 0700), 0);
  // A socket file nobody listens on, as a crashed daemon leaves behind.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a = unix_addr(sock);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ::close(fd);
  ASSERT_TRUE(S_ISSOCK(mode_of(sock)));
  auto before = on_thread<ControlResult<json>>(loop, [&] { return control_call(sock, "echo"); });
  ASSERT_TRUE(before && !*before);
  EXPECT_EQ((*before).error().kind, ControlCallError::NotRunning);

  auto server = make_server();
  Status st = server->start();
  ASSERT_TRUE(st) << st.error().message;
  auto r = on_thread<ControlResult<json>>(loop, [&] { return control_call(sock, "echo"); });
  ASSERT_TRUE(r && *r);
}

TEST_F(ControlServerTest, LiveSocketIsNotTakenOver) {
  auto first = make_server();
  ASSERT_TRUE(first->start());
  ControlServer second(loop.get(), sock, handler);
  Status st = second.start();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "control socket " + sock.string() + " is in use by another punchgate");
  second.close();  // must not remove the first server's socket
  EXPECT_TRUE(S_ISSOCK(mode_of(sock)));
  auto r = on_thread<ControlResult<json>>(loop, [&] { return control_call(sock, "echo"); });
  ASSERT_TRUE(r && *r);
}

TEST_F(ControlServerTest, RefusesNonSocketFile) {
  ASSERT_EQ(::mkdir(sock.parent_path().c_str(), 0700), 0);
  std::ofstream(sock) << "keep me";
  auto server = make_server();
  Status st = server->start();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "control socket path " + sock.string() + " exists and is not a socket");
  std::ifstream in(sock);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "keep me");
}

TEST_F(ControlServerTest, RefusesOverlongPath) {
  ControlServer server(loop.get(), tmp.path() / std::string(120, 'x') / "c.sock", handler);
  Status st = server.start();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("is too long"), std::string::npos) << st.error().message;
}

TEST_F(ControlServerTest, CloseDisconnectsClients) {
  auto server = make_server();
  ASSERT_TRUE(server->start());
  RawClient c(loop, sock);
  ASSERT_TRUE(c.send("{\"method\":\"subscribe\"}\n"));
  ASSERT_TRUE(c.json_line());
  server.reset();  // destructor closes
  EXPECT_TRUE(c.wait_closed());
  EXPECT_FALSE(fs::exists(sock));
}

TEST(ControlClient, NotRunningWhenNoSocket) {
  TempDir tmp;
  fs::path p = tmp.path() / "missing.sock";
  auto r = control_call(p, "status");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ControlCallError::NotRunning);
  EXPECT_EQ(r.error().message, "punchgate is not running (no control socket at " + p.string() + ")");
  auto s = control_subscribe(p, [](const json&) { return true; });
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ControlCallError::NotRunning);
}

TEST(ControlClient, TimesOutWhenNobodyAnswers) {
  TempDir tmp;
  fs::path p = tmp.path() / "silent.sock";
  // Listening, but nothing ever accepts or answers.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a = unix_addr(p);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  auto start = std::chrono::steady_clock::now();
  auto r = control_call(p, "status", json::object(), 200ms);
  auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ControlCallError::Failed);
  EXPECT_EQ(r.error().message, "punchgate did not answer \"status\" within 200 ms");
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
}

TEST(ControlClient, ReportsConnectionClosedWithoutAnswer) {
  TempDir tmp;
  fs::path p = tmp.path() / "rude.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a = unix_addr(p);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  std::thread th([fd] {
    int c = ::accept(fd, nullptr, nullptr);
    char buf[256];
    (void)!::recv(c, buf, sizeof(buf), 0);  // take the request, then hang up
    ::close(c);
  });
  auto r = control_call(p, "status", json::object(), kGiveUp);
  th.join();
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ControlCallError::Failed);
  EXPECT_EQ(r.error().message, "punchgate closed the control connection without answering \"status\"");
}

TEST(ControlClient, RejectsNonProtocolReply) {
  TempDir tmp;
  fs::path p = tmp.path() / "odd.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a = unix_addr(p);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  std::thread th([fd] {
    int c = ::accept(fd, nullptr, nullptr);
    const char reply[] = "HTTP/1.1 400 Bad Request\r\n";
    (void)!::send(c, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
    char buf[256];
    (void)!::recv(c, buf, sizeof(buf), 0);
    ::close(c);
  });
  auto r = control_call(p, "status", json::object(), kGiveUp);
  th.join();
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "unexpected reply from punchgate: HTTP/1.1 400 Bad Request");
}
