#include "transport/quic_connection.hpp"

#include "transport/quic_endpoint.hpp"

#include <ngtcp2/ngtcp2_crypto.h>
#include <sodium.h>

namespace punchgate {

ngtcp2_cid random_cid(size_t len) {
  ngtcp2_cid cid;
  cid.datalen = len;
  randombytes_buf(cid.data, len);
  return cid;
}

// ngtcp2 callbacks. Each only records what happened; the connection acts on it afterwards.
struct QuicCallbacks {
  static QuicConnection* self(void* user_data) { return static_cast<QuicConnection*>(user_data); }

  static void rand(uint8_t* dest, size_t len, const ngtcp2_rand_ctx*) { randombytes_buf(dest, len); }

  static int get_new_connection_id(ngtcp2_conn*, ngtcp2_cid* cid, uint8_t* token, size_t cidlen, void* ud) {
    auto* c = self(ud);
    *cid = random_cid(cidlen);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, c->ep_.reset_secret(), 32, cid) != 0) {
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    c->ep_.register_cid(cid_view(*cid), c);
    c->registered_cids_.emplace_back(cid_view(*cid));
    return 0;
  }

  static int remove_connection_id(ngtcp2_conn*, const ngtcp2_cid* cid, void* ud) {
    auto* c = self(ud);
    c->ep_.unregister_cid(cid_view(*cid));
    std::erase(c->registered_cids_, Bytes(cid_view(*cid)));
    return 0;
  }

  static int handshake_completed(ngtcp2_conn*, void* ud) {
    auto* c = self(ud);
    if (c->remote_peer_.empty()) {
      // Cannot happen with GNUTLS_CERT_REQUIRE, but never admit an unauthenticated peer.
      c->verify_error_ = "peer presented no certificate";
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    c->handshake_done_ = true;
    return 0;
  }

  static int recv_stream_data(ngtcp2_conn*, uint32_t flags, int64_t stream_id, uint64_t, const uint8_t* data,
                              size_t len, void* ud, void*) {
    auto* c = self(ud);
    auto it = c->streams_.find(stream_id);
    if (it == c->streams_.end()) return 0;
    it->second->on_recv(view_of(data, len), (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
    return 0;
  }

  static int acked_stream_data_offset(ngtcp2_conn*, int64_t stream_id, uint64_t offset, uint64_t len, void* ud,
                                      void*) {
    auto* c = self(ud);
    auto it = c->streams_.find(stream_id);
    if (it != c->streams_.end()) it->second->on_acked(offset, len);
    return 0;
  }

  static int stream_open(ngtcp2_conn*, int64_t stream_id, void* ud) {
    auto* c = self(ud);
    if (!ngtcp2_is_bidi_stream(stream_id)) return 0;  // libp2p uses bidirectional streams only
    auto s = std::make_shared<QuicStream>(c, stream_id);
    c->streams_.emplace(stream_id, s);
    c->new_remote_streams_.push_back(s);
    return 0;
  }

  static int stream_close(ngtcp2_conn* conn, uint32_t flags, int64_t stream_id, uint64_t code, void* ud, void*) {
    auto* c = self(ud);
    auto it = c->streams_.find(stream_id);
    if (it != c->streams_.end()) {
      it->second->on_ngtcp2_close((flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) ? code : 0);
      c->closed_streams_.push_back(it->second);
      c->streams_.erase(it);
      c->send_queue_.erase(stream_id);
    }
    // Give the peer its stream credit back, so long-lived connections never run out of streams.
    if (!ngtcp2_conn_is_local_stream(conn, stream_id) && ngtcp2_is_bidi_stream(stream_id)) {
      ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    }
    return 0;
  }

  static int stream_reset(ngtcp2_conn*, int64_t stream_id, uint64_t, uint64_t code, void* ud, void*) {
    auto* c = self(ud);
    auto it = c->streams_.find(stream_id);
    if (it != c->streams_.end()) it->second->on_peer_reset(code);
    return 0;
  }

  static int stream_stop_sending(ngtcp2_conn*, int64_t stream_id, uint64_t code, void* ud, void*) {
    auto* c = self(ud);
    auto it = c->streams_.find(stream_id);
    if (it != c->streams_.end()) {
      it->second->on_peer_reset(code);
      c->send_queue_.erase(stream_id);
    }
    return 0;
  }

  static int extend_max_stream_data(ngtcp2_conn*, int64_t stream_id, uint64_t, void* ud, void*) {
    auto* c = self(ud);
    auto it = c->streams_.find(stream_id);
    if (it != c->streams_.end()) {
      it->second->set_blocked(false);
      c->send_queue_.insert(stream_id);
    }
    return 0;
  }
};

ngtcp2_callbacks quic_callbacks(Endpoint role) {
  ngtcp2_callbacks cb{};
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = QuicCallbacks::rand;
  cb.get_new_connection_id = QuicCallbacks::get_new_connection_id;
  cb.remove_connection_id = QuicCallbacks::remove_connection_id;
  cb.handshake_completed = QuicCallbacks::handshake_completed;
  cb.recv_stream_data = QuicCallbacks::recv_stream_data;
  cb.acked_stream_data_offset = QuicCallbacks::acked_stream_data_offset;
  cb.stream_open = QuicCallbacks::stream_open;
  cb.stream_close = QuicCallbacks::stream_close;
  cb.stream_reset = QuicCallbacks::stream_reset;
  cb.stream_stop_sending = QuicCallbacks::stream_stop_sending;
  cb.extend_max_stream_data = QuicCallbacks::extend_max_stream_data;

  if (role == Endpoint::Dialer) {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  } else {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  }
  return cb;
}

}  // namespace punchgate
