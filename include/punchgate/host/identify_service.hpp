// Identify (/ipfs/id/1.0.0 and /ipfs/id/push/1.0.0): answers requests with our identify message,
// asks every new connection's peer for its own, and records the answers in the peer store.
#pragma once

#include "punchgate/host/identify_message.hpp"
#include "punchgate/transport/connection.hpp"

#include <functional>
#include <vector>

namespace punchgate {

class Host;
struct NegotiatedStream;

struct IdentifyResult {
  PeerId peer;
  IdentifyMessage message;
};

class IdentifyService {
 public:
  explicit IdentifyService(Host& host);

  // Asks the peer on `conn` to identify itself.
  void request(const ConnectionPtr& conn);
  // Called with every identify result (after the peer store is updated).
  void add_observer(std::function<void(const IdentifyResult&)> obs) { observers_.push_back(std::move(obs)); }
  // Sends our current identify message to every connected peer (our addresses changed).
  void push_all();
  // Our identify message as the peer on `conn` gets it (observedAddr is its address as we see it).
  IdentifyMessage our_message(const ConnectionPtr& conn) const;

 private:
  void serve(NegotiatedStream ns);
  void receive_push(NegotiatedStream ns);
  void read_message(NegotiatedStream ns, bool push);
  void record(const ConnectionPtr& conn, const IdentifyMessage& msg, bool push);

  Host& host_;
  std::vector<std::function<void(const IdentifyResult&)>> observers_;
};

}  // namespace punchgate
