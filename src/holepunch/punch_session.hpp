// One hole-punching round with one peer as a pure transition: events in (stream bytes, timer
// expiries, "a direct connection is up"), commands out (write, arm a timer, dial, spray, hard-NAT
// punch, done). HolePuncher executes the commands with real sockets and timers; the decisions —
// what to send, when to punch, how many attempts, when to add a hard-NAT punch, when to give up —
// all live here and are unit-tested without a network.
#pragma once

#include "holepunch/dcutr_exchange.hpp"
#include "holepunch/nat_mapping.hpp"

#include <optional>
#include <string>
#include <vector>

namespace punchgate {

struct PunchParams {
  uint64_t reply_timeout_ms = 10'000;   // CONNECT sent (or awaited), no answer: give up
  uint64_t attempt_timeout_ms = 5'000;  // punch started, no direct connection: next attempt
  bool hard_nat = true;
  uint64_t hard_nat_delay_ms = 1'000;   // head start of the plain punch within an attempt
  size_t hard_nat_sockets = 64;         // fresh-socket dials by the endpoint-dependent side
  size_t hard_nat_probes = 4'096;       // probes by the other side
};

enum class PunchTimer { Reply, Delay, Attempt, HardNat };

struct PunchEvent {
  enum class Kind {
    StreamReady,       // initiator: the /libp2p/dcutr stream is open (the first, or one OpenStream asked for)
    Data,              // bytes from the stream
    TimerFired,        // `timer` expired
    DirectConnection,  // a direct connection to the peer is up (ours or theirs)
    StreamEnded,       // the peer finished or reset the stream
  };
  Kind kind = Kind::Data;
  BytesView data;
  PunchTimer timer = PunchTimer::Reply;
  uint64_t now_ms = 0;
};

struct PunchCommand {
  enum class Kind {
    Write,          // bytes to the stream
    OpenStream,     // initiator: a new /libp2p/dcutr stream on the relayed connection (-> StreamReady)
    StartTimer,     // arm `timer` for `ms` (re-arming replaces)
    StopTimers,     // every timer
    Dial,           // dial each of `addrs` from the listening socket
    StartSpray,     // random packets to `addrs` every 10-200 ms until StopSpray
    StopSpray,
    DialFresh,      // `count` dials spread over `addrs`, each from a fresh socket
    SendProbes,     // `count` probes to random ports of `ip`
    AbortFresh,     // give up fresh-socket dials still handshaking
    Log,            // `text`: an info event worth logging (attempt failed, hard-NAT punch, …)
    Succeeded,      // `attempt`, `elapsed_ms`
    Failed,         // `text`: the reason
  };
  Kind kind = Kind::Log;
  Bytes bytes;
  PunchTimer timer = PunchTimer::Reply;
  uint64_t ms = 0;
  std::vector<Multiaddr> addrs;
  std::string ip;
  size_t count = 0;
  size_t attempt = 0;
  uint64_t elapsed_ms = 0;
  std::string text;
};

class PunchSession {
 public:
  enum class Role { Initiator, Responder };  // B (accepted the relayed connection) / A
  enum class Phase { Exchanging, Waiting, Punching, Succeeded, Failed };

  PunchSession(Role role, PunchParams params, std::vector<Multiaddr> our_addrs, NatMapping our_mapping,
               uint64_t now_ms);
  // Responder: arms the wait for the first CONNECT. Initiator: nothing until StreamReady.
  std::vector<PunchCommand> start();
  std::vector<PunchCommand> handle(const PunchEvent& ev);

  Role role() const { return role_; }
  Phase phase() const { return phase_; }
  bool finished() const { return phase_ == Phase::Succeeded || phase_ == Phase::Failed; }
  size_t attempt() const { return attempt_; }
  // For status: "hole punch in progress (attempt 2)", "hole punched (attempt 1, 35 ms)", …
  const std::string& outcome() const { return outcome_; }

 private:
  using Out = std::vector<PunchCommand>;
  void on_data(BytesView data, uint64_t now, Out& out);
  void on_timer(PunchTimer t, uint64_t now, Out& out);
  void begin_punch(uint64_t now, Out& out);
  void hard_nat(Out& out);
  void attempt_over(uint64_t now, Out& out);
  void send_connect(uint64_t now, Out& out);
  void reopen(Out& out);
  void succeed(uint64_t now, Out& out);
  void fail(const std::string& reason, Out& out);

  Role role_;
  PunchParams params_;
  NatMapping our_mapping_;
  uint64_t started_ms_;
  Phase phase_ = Phase::Exchanging;
  std::optional<DcutrInitiator> init_;
  std::optional<DcutrResponder> resp_;
  DcutrPunch plan_;
  size_t attempt_ = 0;
  bool stream_ended_ = false;
  bool awaiting_stream_ = true;      // initiator: no stream to write CONNECT on yet
  bool answered_on_stream_ = false;  // initiator: a CONNECT was answered on the current stream
  std::string outcome_ = "hole punch starting";
};

}  // namespace punchgate
