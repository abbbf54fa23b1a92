// Ed25519 host identity and the libp2p key protobufs (peer-ids/peer-ids.md).
#include "punchgate/crypto/identity.hpp"

#include "punchgate/core/unique_fd.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string_view>

namespace punchgate {
namespace {

namespace fs = std::filesystem;

constexpr size_t kEd25519PublicLen = crypto_sign_PUBLICKEYBYTES;  // 32
constexpr size_t kEd25519SeedLen = crypto_sign_SEEDBYTES;         // 32
constexpr size_t kEd25519SecretLen = crypto_sign_SECRETKEYBYTES;  // 64: seed || public key
constexpr size_t kEd25519LegacySecretLen = 96;                    // seed || public || public (old go-libp2p)
constexpr size_t kEd25519SignatureLen = crypto_sign_BYTES;        // 64
constexpr size_t kSecp256k1PublicLen = 33;                        // compressed point
constexpr size_t kMaxKeyDataLen = 4096;  // DER RSA/ECDSA keys; 16384-bit RSA stays well below
constexpr size_t kMaxIdentityFileLen = 4096;

static_assert(kEd25519SecretLen == 64 && kEd25519PublicLen == 32 && kEd25519SeedLen == 32);

void ensure_sodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) {
    // Without libsodium there is no randomness and no signing; nothing sensible can continue.
    std::fputs("punchgate: sodium_init() failed\n", stderr);
    std::abort();
  }
}


struct KeyMessage {
  KeyType type;
  BytesView data;  // points into the parsed buffer
};

// Parses a PublicKey/PrivateKey message {1: KeyType varint, 2: bytes Data}. Both fields are
// required, each at most once; unknown fields, wrong wire types and unknown key types are errors.
Result<KeyMessage> parse_key_message(BytesView proto, std::string_view what) {
  std::optional<uint64_t> type;
  std::optional<BytesView> data;
  try {
    protozero::pbf_reader reader(proto.data(), proto.size());
    while (reader.next()) {
      switch (reader.tag()) {
        case 1:
          if (reader.wire_type() != protozero::pbf_wire_type::varint)
            return make_error("{} protobuf: field 1 (Type) has wire type {}, expected varint", what,
                              static_cast<int>(reader.wire_type()));
          if (type) return make_error("{} protobuf: field 1 (Type) appears twice", what);
          type = reader.get_uint64();
          break;
        case 2:
          if (reader.wire_type() != protozero::pbf_wire_type::length_delimited)
            return make_error("{} protobuf: field 2 (Data) has wire type {}, expected bytes", what,
                              static_cast<int>(reader.wire_type()));
          if (data) return make_error("{} protobuf: field 2 (Data) appears twice", what);
          {
            auto v = reader.get_view();
            data = BytesView(v.data(), v.size());
          }
          break;
        default:
          return make_error("{} protobuf: unknown field {}", what, reader.tag());
      }
    }
  } catch (const std::exception& e) {
    return make_error("{} protobuf: malformed ({})", what, e.what());
  }
  if (!type) return make_error("{} protobuf: missing field 1 (Type)", what);
  if (!data) return make_error("{} protobuf: missing field 2 (Data)", what);
  if (*type > 3) return make_error("{} protobuf: unknown key type {}", what, *type);
  return KeyMessage{static_cast<KeyType>(*type), *data};
}

Bytes encode_key_message(KeyType type, BytesView data) {
  Bytes out;
  // Reserve up front so that secret bytes are never left behind in a freed, reallocated buffer.
  out.reserve(data.size() + 16);
  protozero::pbf_writer writer(out);
  writer.add_enum(1, static_cast<int32_t>(type));
  writer.add_bytes(2, data.data(), data.size());
  return out;
}

void wipe(Bytes& b) {
  if (!b.empty()) sodium_memzero(b.data(), b.size());
  b.clear();
}

// Wipes a string holding secret material when it goes out of scope.
struct WipeOnExit {
  Bytes& b;
  ~WipeOnExit() { wipe(b); }
};


Error file_error(const fs::path& path, std::string_view reason) {
  return make_error("identity file {}: {}", path.string(), reason);
}

// Reads the identity file. nullopt: nothing exists at `path`.
Result<std::optional<Identity>> try_load(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    int err = errno;
    if (err == ENOENT) {
      struct stat lst {};
      // Only a dangling symlink counts: a regular file seen here was created by a concurrent
      // creator after our open failed, and the caller's create step will load it.
      if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
        return file_error(path, "is a symbolic link to a missing target (refusing to create through it)");
      return std::optional<Identity>();
    }
    if (err == EACCES) return file_error(path, fmt::format("cannot be read: {} (check its owner and mode)", errno_text(err)));
    return file_error(path, fmt::format("cannot be opened: {}", errno_text(err)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return file_error(path, fmt::format("cannot stat: {}", errno_text(errno)));
  if (S_ISDIR(st.st_mode)) return file_error(path, "is a directory, not a key file");
  if (!S_ISREG(st.st_mode)) return file_error(path, "is not a regular file");
  if (st.st_size > static_cast<off_t>(kMaxIdentityFileLen))
    return file_error(path, fmt::format("is {} bytes, larger than the {} byte limit for a key file",
                                        static_cast<long long>(st.st_size), kMaxIdentityFileLen));

  // Read at most limit+1 bytes (the file may change under us) into a buffer wiped afterwards.
  Bytes buf;
  WipeOnExit wipe_buf{buf};
  buf.resize(kMaxIdentityFileLen + 1);
  size_t used = 0;
  while (used < buf.size()) {
    ssize_t n = ::read(fd.get(), buf.data() + used, buf.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return file_error(path, fmt::format("read failed: {}", errno_text(errno)));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxIdentityFileLen)
    return file_error(path, fmt::format("is larger than the {} byte limit for a key file", kMaxIdentityFileLen));
  if (used == 0) return file_error(path, "is empty");

  auto id = Identity::from_protobuf(BytesView(buf.data(), used));
  if (!id) return file_error(path, id.error().message);
  return std::optional<Identity>(std::move(*id));
}

// mkdir -p with mode 0700 for the directories it creates; existing ones are left alone.
Status make_parent_dirs(const fs::path& dir) {
  if (dir.empty()) return {};
  fs::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) == 0) continue;
    int err = errno;
    if (err == EEXIST) {
      struct stat st {};
      if (::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
      return make_error("identity file directory {}: exists but is not a directory", partial.string());
    }
    // A read-only or permission-restricted ancestor (e.g. "/") that already exists is fine.
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    return make_error("identity file directory {}: cannot be created: {}", partial.string(), errno_text(err));
  }
  return {};
}

Status write_all(int fd, BytesView data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("{}", errno_text(errno));
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

// Removes the temp file on every path that does not hand it over to the final name.
struct TempFileGuard {
  fs::path path;
  bool armed = true;
  ~TempFileGuard() {
    if (armed) ::unlink(path.c_str());
  }
};

// Writes a fresh identity next to `path` and moves it into place without ever replacing an existing
// file. nullopt: another process created `path` first (the caller then loads that one).
Result<std::optional<Identity>> try_create(const fs::path& path) {
  fs::path dir = path.parent_path();
  PG_TRY(make_parent_dirs(dir));
  fs::path dir_for_fsync = dir.empty() ? fs::path(".") : dir;

  uint8_t rnd[8];
  randombytes_buf(rnd, sizeof rnd);
  fs::path tmp = dir / fmt::format(".{}.tmp-{}", path.filename().string(), to_hex(view_of(rnd, sizeof rnd)));

  Identity id = Identity::generate();
  Bytes proto = id.to_protobuf();
  WipeOnExit wipe_proto{proto};

  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return file_error(path, fmt::format("cannot create temporary file {}: {}", tmp.string(), errno_text(errno)));
  TempFileGuard guard{tmp};
  if (::fchmod(fd.get(), 0600) != 0)
    return file_error(path, fmt::format("cannot chmod temporary file {}: {}", tmp.string(), errno_text(errno)));
  if (auto w = write_all(fd.get(), proto); !w)
    return file_error(path, fmt::format("cannot write temporary file {}: {}", tmp.string(), w.error().message));
  if (::fsync(fd.get()) != 0)
    return file_error(path, fmt::format("cannot fsync temporary file {}: {}", tmp.string(), errno_text(errno)));
  if (fd.close_checked() != 0)
    return file_error(path, fmt::format("cannot close temporary file {}: {}", tmp.string(), errno_text(errno)));

  // Atomic and never overwriting: renameat2(RENAME_NOREPLACE), or link()+unlink() where the
  // filesystem lacks it.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
    guard.armed = false;
  } else {
    int err = errno;
    if (err == EEXIST) return std::optional<Identity>();
    if (err != EINVAL && err != ENOSYS && err != ENOTSUP)
      return file_error(path, fmt::format("cannot move {} into place: {}", tmp.string(), errno_text(err)));
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      err = errno;
      if (err == EEXIST) return std::optional<Identity>();
      return file_error(path, fmt::format("cannot link {} into place: {}", tmp.string(), errno_text(err)));
    }
    // guard unlinks the temp name; the key now lives under `path`.
  }

  UniqueFd dfd(::open(dir_for_fsync.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd || ::fsync(dfd.get()) != 0)
    return file_error(path, fmt::format("written, but fsync of directory {} failed: {}", dir_for_fsync.string(),
                                        errno_text(errno)));
  return std::optional<Identity>(std::move(id));
}

}  // namespace

// ---- PublicKey ----

Bytes PublicKey::to_protobuf() const { return encode_key_message(type, data); }

Result<PublicKey> PublicKey::from_protobuf(BytesView proto) {
  auto msg = parse_key_message(proto, "PublicKey");
  if (!msg) return msg.error();
  const auto t = static_cast<uint64_t>(msg->type);
  const size_t n = msg->data.size();
  switch (msg->type) {
    case KeyType::Ed25519:
      if (n != kEd25519PublicLen)
        return make_error("PublicKey protobuf: Ed25519 key is {} bytes, expected {}", n, kEd25519PublicLen);
      break;
    case KeyType::Secp256k1:
      if (n != kSecp256k1PublicLen)
        return make_error("PublicKey protobuf: Secp256k1 key is {} bytes, expected {}", n, kSecp256k1PublicLen);
      break;
    case KeyType::RSA:
    case KeyType::ECDSA:
      if (n == 0 || n > kMaxKeyDataLen)
        return make_error("PublicKey protobuf: key type {} ({}) data is {} bytes, expected 1..{}", t,
                          key_type_name(t), n, kMaxKeyDataLen);
      break;
  }
  return PublicKey{msg->type, Bytes(msg->data)};
}

bool PublicKey::verify(BytesView message, BytesView signature) const {
  if (type != KeyType::Ed25519 || data.size() != kEd25519PublicLen || signature.size() != kEd25519SignatureLen)
    return false;
  ensure_sodium();
  return crypto_sign_verify_detached(data_u8(signature), data_u8(message), message.size(), data_u8(data)) == 0;
}

// ---- Identity ----

Identity::~Identity() { sodium_memzero(secret_.data(), secret_.size()); }

Identity Identity::generate() {
  ensure_sodium();
  Identity id;
  uint8_t pk[kEd25519PublicLen];
  crypto_sign_keypair(pk, id.secret_.data());
  id.public_ = PublicKey{KeyType::Ed25519, Bytes(reinterpret_cast<const char*>(pk), sizeof pk)};
  id.peer_id_ = id.public_.peer_id();
  return id;
}

std::string_view key_type_name(uint64_t t) {
  switch (t) {
    case 0: return "RSA";
    case 1: return "Ed25519";
    case 2: return "Secp256k1";
    case 3: return "ECDSA";
    default: return "unknown";
  }
}

Result<Identity> Identity::from_protobuf(BytesView private_key_proto) {
  auto msg = parse_key_message(private_key_proto, "PrivateKey");
  if (!msg) return msg.error();
  const auto t = static_cast<uint64_t>(msg->type);
  if (msg->type != KeyType::Ed25519) return make_error("key type {} ({}) is not Ed25519", t, key_type_name(t));
  BytesView d = msg->data;
  if (d.size() == kEd25519LegacySecretLen) {
    // Older libp2p wrote seed || public || public; accept it only when both copies agree.
    if (d.substr(32, 32) != d.substr(64, 32))
      return make_error("Ed25519 private key: 96-byte legacy form has two different public keys");
  } else if (d.size() != kEd25519SecretLen) {
    return make_error("Ed25519 private key is {} bytes, expected {}", d.size(), kEd25519SecretLen);
  }

  ensure_sodium();
  Identity id;
  uint8_t pk[kEd25519PublicLen];
  crypto_sign_seed_keypair(pk, id.secret_.data(), data_u8(d));  // first 32 bytes: the seed
  if (sodium_memcmp(pk, d.data() + kEd25519SeedLen, kEd25519PublicLen) != 0)
    return make_error("Ed25519 private key: stored public key does not match the one derived from the seed");
  id.public_ = PublicKey{KeyType::Ed25519, Bytes(reinterpret_cast<const char*>(pk), sizeof pk)};
  id.peer_id_ = id.public_.peer_id();
  return id;
}

Bytes Identity::to_protobuf() const {
  return encode_key_message(KeyType::Ed25519, view_of(secret_.data(), secret_.size()));
}

Bytes Identity::sign(BytesView message) const {
  ensure_sodium();
  Bytes sig(kEd25519SignatureLen, '\0');
  crypto_sign_detached(reinterpret_cast<uint8_t*>(sig.data()), nullptr, data_u8(message), message.size(),
                       secret_.data());
  return sig;
}

Result<Identity> Identity::load_or_create(const std::filesystem::path& path) {
  if (path.empty()) return make_error("identity file path is empty");
  if (!path.has_filename()) return file_error(path, "path names a directory, not a file");
  // Two rounds: if another process creates the file between our read and our rename, load theirs.
  for (int round = 0; round < 2; ++round) {
    auto loaded = try_load(path);
    if (!loaded) return loaded.error();
    if (loaded->has_value()) return std::move(**loaded);
    auto created = try_create(path);
    if (!created) return created.error();
    if (created->has_value()) return std::move(**created);
  }
  return file_error(path, "was created concurrently but could not be read back");
}

}  // namespace punchgate
