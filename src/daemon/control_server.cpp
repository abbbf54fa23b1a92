#include "daemon/control_server.hpp"

#include "punchgate/core/log.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>
#include <variant>
#include <vector>

namespace punchgate {

namespace {

using nlohmann::json;

constexpr int kListenBacklog = 16;

uv_stream_t* as_stream(uv_pipe_t* p) { return reinterpret_cast<uv_stream_t*>(p); }

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

// Whether something accepts connections on `path` (a socket file). Non-blocking, so a live
// server with a full backlog counts as live (EAGAIN) rather than hanging us.
enum class Probe { Live, Refused, Gone };
Result<Probe> probe_socket(const std::filesystem::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return make_error("cannot create a socket: {}", std::strerror(errno));
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());  // length checked by start()
  int rv = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int err = rv == 0 ? 0 : errno;
  ::close(fd);
  if (rv == 0 || err == EAGAIN || err == EINPROGRESS) return Probe::Live;
  if (err == ECONNREFUSED) return Probe::Refused;
  if (err == ENOENT) return Probe::Gone;
  return make_error("cannot check existing control socket {}: {}", path.string(), std::strerror(err));
}

}  // namespace

struct ControlServer::Client {
  Client(ControlServer* s, uint64_t i) : server(s), id(i) {}
  ControlServer* server;
  uint64_t id;
  UvHandle<uv_pipe_t> pipe;
  ControlLineReader reader;
  bool subscriber = false;
  bool rejected = false;  // over the client limit: told so, then closed
  bool closing = false;   // no more reading; closed once writes_in_flight reaches 0
  bool closed = false;    // dropped from clients_, handle closing
  size_t writes_in_flight = 0;
};

struct ControlServer::WriteReq {
  uv_write_t req{};
  std::string data;
  std::weak_ptr<Client> client;
};

ControlServer::ControlServer(uv_loop_t* loop, std::filesystem::path socket_path, ControlHandler& handler,
                             ControlServerLimits limits)
    : loop_(loop), path_(std::move(socket_path)), handler_(handler), limits_(limits) {}

ControlServer::~ControlServer() { close(); }

Status ControlServer::start() {
  if (started_) return make_error("control socket {} was already started", path_.string());
  started_ = true;
  if (path_.empty()) return make_error("control socket path is empty");
  // sockaddr_un holds the path with its NUL; libuv would silently cut a longer one.
  constexpr size_t kMaxPath = sizeof(sockaddr_un{}.sun_path) - 1;
  if (path_.native().size() > kMaxPath) {
    return make_error("control socket path {} is too long ({} bytes, limit {})", path_.string(),
                      path_.native().size(), kMaxPath);
  }
  PG_TRY(prepare_directory());
  PG_TRY(clear_stale_socket());

  uv_pipe_init(loop_, listener_.get(), 0);
  listener_.mark_initialised();
  listener_.get()->data = this;
  // The umask makes the socket 0600 from its first moment: no window in which another user
  // could connect before the chmod below.
  mode_t old_mask = ::umask(0177);
  int rv = uv_pipe_bind(listener_.get(), path_.c_str());
  ::umask(old_mask);
  if (rv != 0) {
    listener_.close();
    return make_error("cannot bind control socket {}: {}", path_.string(), uv_strerror(rv));
  }
  if (::chmod(path_.c_str(), 0600) != 0) {
    int err = errno;
    close();
    return make_error("cannot chmod control socket {}: {}", path_.string(), std::strerror(err));
  }
  rv = uv_listen(as_stream(listener_.get()), kListenBacklog, [](uv_stream_t* s, int status) {
    if (auto* self = static_cast<ControlServer*>(s->data)) self->on_connection(status);
  });
  if (rv != 0) {
    close();
    return make_error("cannot listen on control socket {}: {}", path_.string(), uv_strerror(rv));
  }
  listening_ = true;
  spdlog::info("control socket listening path={}", path_.string());
  return {};
}

Status ControlServer::prepare_directory() {
  const std::filesystem::path dir = path_.parent_path();
  if (dir.empty()) return {};  // a bare name in the working directory, which is not ours to change
  bool created = false;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return make_error("cannot use control socket directory {}: {}", dir.string(), std::strerror(errno));
    }
    std::error_code ec;
    if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return make_error("cannot create directory {}: {}", dir.parent_path().string(), ec.message());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return make_error("cannot create control socket directory {}: {}", dir.string(), std::strerror(errno));
    }
    created = true;
    if (::stat(dir.c_str(), &st) != 0) {
      return make_error("cannot use control socket directory {}: {}", dir.string(), std::strerror(errno));
    }
  }
  if (!S_ISDIR(st.st_mode)) return make_error("control socket directory {} is not a directory", dir.string());
  // An existing directory is tightened only when it is punchgate's own (the default
  // …/punchgate/control.sock): a directory the user pointed --control-socket into (their home,
  // /run, /tmp) is theirs to manage, and the socket itself is 0600 either way.
  bool ours = st.st_uid == ::geteuid() && (created || dir.filename() == "punchgate");
  if (ours && (st.st_mode & 07777) != 0700) {
    if (::chmod(dir.c_str(), 0700) != 0) {
      return make_error("cannot chmod control socket directory {}: {}", dir.string(), std::strerror(errno));
    }
    if (!created) {
      spdlog::info("control socket directory tightened path={} mode={:o} now=700", dir.string(), st.st_mode & 07777);
    }
  }
  return {};
}

Status ControlServer::clear_stale_socket() {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return make_error("cannot use control socket path {}: {}", path_.string(), std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return make_error("control socket path {} exists and is not a socket", path_.string());
  auto probe = probe_socket(path_);
  if (!probe) return probe.error();
  if (*probe == Probe::Live) return make_error("control socket {} is in use by another punchgate", path_.string());
  if (*probe == Probe::Refused) {
    // A previous run died without cleaning up: nobody listens, so the file is only in the way.
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      return make_error("cannot remove stale control socket {}: {}", path_.string(), std::strerror(errno));
    }
    spdlog::info("control socket stale file removed path={}", path_.string());
  }
  return {};
}

void ControlServer::close() {
  auto clients = std::move(clients_);
  clients_.clear();
  for (auto& [id, c] : clients) {
    c->closed = true;
    c->pipe.close();
  }
  // libuv unlinks the path it bound when the listening pipe closes.
  listener_.close();
  if (listening_) spdlog::info("control socket closed path={}", path_.string());
  listening_ = false;
}

size_t ControlServer::subscriber_count() const {
  size_t n = 0;
  for (const auto& [id, c] : clients_) n += (c->subscriber && !c->closing) ? 1 : 0;
  return n;
}

void ControlServer::on_connection(int status) {
  if (status != 0) {
    spdlog::debug("control socket accept failed error={}", uv_strerror(status));
    return;
  }
  auto c = std::make_shared<Client>(this, next_client_id_++);
  uv_pipe_init(loop_, c->pipe.get(), 0);
  c->pipe.mark_initialised();
  if (int rv = uv_accept(as_stream(listener_.get()), as_stream(c->pipe.get())); rv != 0) {
    spdlog::debug("control socket accept failed error={}", uv_strerror(rv));
    return;  // c's handle closes with it
  }
  size_t active = 0;
  for (const auto& [id, other] : clients_) active += other->rejected ? 0 : 1;
  clients_.emplace(c->id, c);
  if (active >= limits_.max_clients) {
    // Accept and answer rather than leave it in the backlog: the CLI then says why.
    c->rejected = true;
    spdlog::debug("control client rejected client={} reason=limit limit={}", c->id, limits_.max_clients);
    send(c, control_error_line(nullptr, fmt::format("too many control clients (limit {})", limits_.max_clients)));
    close_after_flush(c);
    return;
  }
  c->pipe.get()->data = c.get();
  spdlog::debug("control client connected client={} clients={}", c->id, active + 1);
  uv_read_start(
      as_stream(c->pipe.get()),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* client = static_cast<Client*>(h->data);
        if (!client) {
          *buf = uv_buf_init(nullptr, 0);
          return;
        }
        auto& storage = *client->server->read_buf_;
        *buf = uv_buf_init(storage.data(), static_cast<unsigned>(storage.size()));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* client = static_cast<Client*>(s->data);
        if (!client) return;
        ControlServer* self = client->server;
        auto it = self->clients_.find(client->id);
        if (it == self->clients_.end()) return;
        // A copy: handling a line may drop this client (e.g. publish() from the handler finds
        // it backlogged) while we still use it.
        std::shared_ptr<Client> keep = it->second;
        self->on_read(keep, n, buf);
      });
}

void ControlServer::on_read(const std::shared_ptr<Client>& c, ssize_t n, const uv_buf_t* buf) {
  if (n == 0 || c->closed || c->closing) return;
  if (n < 0) {
    drop(c, n == UV_EOF ? "eof" : uv_strerror(static_cast<int>(n)));
    return;
  }
  c->reader.feed(BytesView(buf->base, static_cast<size_t>(n)));
  while (!c->closed && !c->closing) {
    auto line = c->reader.next();
    if (!line) break;
    handle_line(c, *line);
  }
  if (!c->closed && !c->closing && c->reader.too_large()) {
    spdlog::debug("control request rejected client={} reason=too-large", c->id);
    send(c, control_error_line(nullptr, control_too_large_message()));
    close_after_flush(c);
  }
}

void ControlServer::handle_line(const std::shared_ptr<Client>& c, const std::string& line) {
  if (blank(line)) return;  // e.g. an extra Enter in an interactive socat session
  auto parsed = parse_control_request(line);
  if (auto* err = std::get_if<ControlRequestError>(&parsed)) {
    spdlog::debug("control request rejected client={} reason={}", c->id, log_quote(err->message));
    send(c, control_error_line(err->id, err->message));
    return;
  }
  auto& req = std::get<ControlRequest>(parsed);
  if (req.method == "subscribe") {
    c->subscriber = true;
    spdlog::debug("control client subscribed client={}", c->id);
    send(c, control_ok_line(req.id, json{{"subscribed", true}}));
    return;
  }
  // The handler works on client-supplied JSON; a nlohmann type_error thrown there must not
  // unwind through libuv's C frames.
  std::string line_out;
  try {
    Result<json> r = handler_.call(req.method, req.params);
    line_out = r ? control_ok_line(req.id, *r) : control_error_line(req.id, r.error().message);
    spdlog::debug("control request client={} method={} ok={}", c->id, log_quote(req.method), r.ok());
  } catch (const std::exception& e) {
    spdlog::warn("control request failed client={} method={} error={}", c->id, log_quote(req.method),
                 log_quote(e.what()));
    line_out = control_error_line(req.id, fmt::format("internal error in {}: {}", req.method, e.what()));
  }
  send(c, std::move(line_out));
}

void ControlServer::publish(const json& event) {
  std::vector<std::shared_ptr<Client>> subscribers;
  for (const auto& [id, c] : clients_) {
    if (c->subscriber && !c->closing) subscribers.push_back(c);
  }
  if (subscribers.empty()) return;
  const std::string line = control_event_line(event);
  for (const auto& c : subscribers) send(c, line);
}

void ControlServer::send(const std::shared_ptr<Client>& c, std::string line) {
  if (c->closed || c->closing) return;
  // Counting what libuv still queues (not what the kernel took) means a reading client never
  // trips the limit, while one that stopped reading does once its socket buffer is full. A
  // single large response to an idle queue always goes out.
  size_t queued = uv_stream_get_write_queue_size(as_stream(c->pipe.get()));
  if (queued > 0 && queued + line.size() > limits_.max_unsent_bytes) {
    drop(c, "output backlog over limit");
    return;
  }
  auto req = std::make_unique<WriteReq>();
  req->data = std::move(line);
  req->client = c;
  req->req.data = req.get();
  uv_buf_t b = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  int rv = uv_write(&req->req, as_stream(c->pipe.get()), &b, 1, [](uv_write_t* w, int status) {
    std::unique_ptr<WriteReq> owned(static_cast<WriteReq*>(w->data));
    if (auto client = owned->client.lock()) client->server->on_write_done(client, status);
  });
  if (rv != 0) {
    drop(c, uv_strerror(rv));
    return;
  }
  req.release();  // libuv owns it until the write callback
  ++c->writes_in_flight;
}

void ControlServer::on_write_done(const std::shared_ptr<Client>& c, int status) {
  --c->writes_in_flight;
  if (c->closed) return;
  if (status != 0) {
    drop(c, uv_strerror(status));
    return;
  }
  if (c->closing && c->writes_in_flight == 0) drop(c, c->rejected ? "rejected" : "closed after error");
}

void ControlServer::close_after_flush(const std::shared_ptr<Client>& c) {
  if (c->closed) return;
  c->closing = true;
  uv_read_stop(as_stream(c->pipe.get()));
  if (c->writes_in_flight == 0) drop(c, c->rejected ? "rejected" : "closed after error");
}

void ControlServer::drop(const std::shared_ptr<Client>& c, const char* reason) {
  if (c->closed) return;
  c->closed = true;
  spdlog::debug("control client closed client={} reason={}", c->id, reason);
  c->pipe.close();
  clients_.erase(c->id);
}

}  // namespace punchgate
