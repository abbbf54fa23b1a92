// The daemon's local control socket: a Unix stream socket on the node's libuv loop that frames
// and validates line-delimited JSON requests, hands them to a ControlHandler and pushes events to
// subscribers (wire format: daemon/control_protocol.hpp).
#pragma once

#include "daemon/control_protocol.hpp"
#include "punchgate/core/result.hpp"
#include "punchgate/core/uv_handle.hpp"

#include <nlohmann/json.hpp>
#include <uv.h>

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace punchgate {

// Answers every method except "subscribe" (which the server handles itself). An Error becomes
// an {"ok":false,"error":…} response; its message should name the bad value.
class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  virtual Result<nlohmann::json> call(const std::string& method, const nlohmann::json& params) = 0;
};

struct ControlServerLimits {
  size_t max_clients = 32;
  // Bytes queued for one client that the kernel has not taken yet. A client whose backlog would
  // pass this (a subscriber that stopped reading) is disconnected instead of buffered for.
  size_t max_unsent_bytes = 1024 * 1024;
};

class ControlServer {
 public:
  ControlServer(uv_loop_t* loop, std::filesystem::path socket_path, ControlHandler& handler,
                ControlServerLimits limits = {});
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket's directory (0700) if missing, replaces a stale socket file, refuses a
  // live one ("control socket … is in use by another punchgate"), binds (0600) and listens.
  Status start();
  // Sends an event line to every subscriber. May be called from inside ControlHandler::call.
  void publish(const nlohmann::json& event);
  // Disconnects every client, stops listening and removes the socket file start() created.
  // Idempotent; the destructor calls it.
  void close();

  size_t subscriber_count() const;
  size_t client_count() const { return clients_.size(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Client;
  struct WriteReq;

  Status prepare_directory();
  Status clear_stale_socket();
  void on_connection(int status);
  void on_read(const std::shared_ptr<Client>& c, ssize_t n, const uv_buf_t* buf);
  void handle_line(const std::shared_ptr<Client>& c, const std::string& line);
  void send(const std::shared_ptr<Client>& c, std::string line);
  void on_write_done(const std::shared_ptr<Client>& c, int status);
  void drop(const std::shared_ptr<Client>& c, const char* reason);
  // Stops reading from `c` and closes it once everything queued for it is written.
  void close_after_flush(const std::shared_ptr<Client>& c);

  uv_loop_t* loop_;
  std::filesystem::path path_;
  ControlHandler& handler_;
  ControlServerLimits limits_;
  UvHandle<uv_pipe_t> listener_;
  bool started_ = false;  // start() runs once per server
  bool listening_ = false;
  uint64_t next_client_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Client>> clients_;
  // Reads are handled before the next one arrives, so one buffer serves every client.
  std::unique_ptr<std::array<char, 65536>> read_buf_ = std::make_unique<std::array<char, 65536>>();
};

}  // namespace punchgate
