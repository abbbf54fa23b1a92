#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

namespace punchgate {
namespace {

namespace fs = std::filesystem;

Bytes unhex(std::string_view hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

// peer-ids/peer-ids.md test vectors (Ed25519).
constexpr std::string_view kSpecPrivateKey =
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
constexpr std::string_view kSpecPublicKey = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
// base58btc of the identity multihash (0x00 0x24 || public key protobuf), computed independently.
constexpr std::string_view kSpecPeerId = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

Bytes read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

void write_file(const fs::path& p, BytesView content) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(testing::TempDir()) / "pg_identity_XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// ---- keys, signing, protobuf ----

TEST(Identity, GenerateSignVerify) {
  Identity id = Identity::generate();
  EXPECT_EQ(id.public_key().type, KeyType::Ed25519);
  ASSERT_EQ(id.public_key().data.size(), 32u);
  EXPECT_FALSE(id.peer_id().empty());
  EXPECT_EQ(id.peer_id(), id.public_key().peer_id());

  Bytes sig = id.sign("hello punchgate");
  ASSERT_EQ(sig.size(), 64u);
  EXPECT_TRUE(id.public_key().verify("hello punchgate", sig));
  EXPECT_FALSE(id.public_key().verify("hello punchgatE", sig));
  Bytes bad = sig;
  bad[10] ^= 0x01;
  EXPECT_FALSE(id.public_key().verify("hello punchgate", bad));
  EXPECT_FALSE(id.public_key().verify("hello punchgate", BytesView(sig).substr(0, 63)));
  EXPECT_FALSE(id.public_key().verify("hello punchgate", sig + "x"));

  Identity other = Identity::generate();
  EXPECT_NE(other.peer_id(), id.peer_id());
  EXPECT_FALSE(other.public_key().verify("hello punchgate", sig));

  PublicKey not_ed{KeyType::Secp256k1, Bytes(33, '\x02')};
  EXPECT_FALSE(not_ed.verify("hello punchgate", sig));
}

TEST(Identity, EmptyMessageSignature) {
  Identity id = Identity::generate();
  Bytes sig = id.sign("");
  EXPECT_TRUE(id.public_key().verify("", sig));
}

TEST(Identity, ProtobufRoundTrip) {
  Identity id = Identity::generate();
  Bytes proto = id.to_protobuf();
  ASSERT_EQ(proto.size(), 68u);
  EXPECT_EQ(proto.substr(0, 4), unhex("08011240"));
  EXPECT_EQ(proto.substr(36), id.public_key().data);  // seed || public

  auto back = Identity::from_protobuf(proto);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->peer_id(), id.peer_id());
  EXPECT_EQ(back->public_key().data, id.public_key().data);
  EXPECT_EQ(back->to_protobuf(), proto);
  EXPECT_EQ(back->sign("m"), id.sign("m"));  // Ed25519 is deterministic

  Bytes pub = id.public_key().to_protobuf();
  ASSERT_EQ(pub.size(), 36u);
  EXPECT_EQ(pub.substr(0, 4), unhex("08011220"));
  auto pk = PublicKey::from_protobuf(pub);
  ASSERT_TRUE(pk.ok()) << pk.error().message;
  EXPECT_EQ(pk->type, KeyType::Ed25519);
  EXPECT_EQ(pk->data, id.public_key().data);
  EXPECT_EQ(pk->to_protobuf(), pub);
}

TEST(Identity, CopiesAndMovesKeepTheKey) {
  Identity id = Identity::generate();
  Identity copy = id;
  Identity moved = std::move(copy);
  EXPECT_EQ(moved.peer_id(), id.peer_id());
  EXPECT_TRUE(id.public_key().verify("x", moved.sign("x")));
}

TEST(Identity, SpecVector) {
  auto id = Identity::from_protobuf(unhex(kSpecPrivateKey));
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(to_hex(id->public_key().to_protobuf()), kSpecPublicKey);
  EXPECT_EQ(to_hex(id->to_protobuf()), kSpecPrivateKey);
  EXPECT_EQ(id->peer_id().to_base58(), kSpecPeerId);
  EXPECT_EQ(id->peer_id().to_base58().rfind("12D3KooW", 0), 0u);

  auto pk = PublicKey::from_protobuf(unhex(kSpecPublicKey));
  ASSERT_TRUE(pk.ok()) << pk.error().message;
  EXPECT_EQ(pk->peer_id(), id->peer_id());
  EXPECT_TRUE(pk->verify("spec", id->sign("spec")));
}

TEST(Identity, LegacyNinetySixByteForm) {
  Bytes priv = unhex(kSpecPrivateKey);
  Bytes data = priv.substr(4) + priv.substr(36);  // seed || public || public
  Bytes proto = unhex("08011260") + data;
  auto id = Identity::from_protobuf(proto);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->peer_id().to_base58(), kSpecPeerId);
  EXPECT_EQ(to_hex(id->to_protobuf()), kSpecPrivateKey);  // re-encoded in the 64-byte form

  data[95] ^= 0x01;
  auto bad = Identity::from_protobuf(unhex("08011260") + data);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("96-byte"), std::string::npos) << bad.error().message;
}

struct BadProto {
  const char* name;
  Bytes proto;
  const char* expect;  // substring of the error
};

TEST(Identity, FromProtobufRejects) {
  const Bytes priv = unhex(kSpecPrivateKey);
  const Bytes key64 = priv.substr(4);
  Bytes mismatched = key64;
  mismatched[63] ^= 0x01;
  const std::vector<BadProto> cases = {
      {"empty", "", "missing field 1"},
      {"only type", unhex("0801"), "missing field 2"},
      {"only data", unhex("1240") + key64, "missing field 1"},
      {"rsa", unhex("08001240") + key64, "key type 0 (RSA) is not Ed25519"},
      {"secp256k1", unhex("08021220") + key64.substr(0, 32), "key type 2 (Secp256k1) is not Ed25519"},
      {"ecdsa", unhex("08031240") + key64, "key type 3 (ECDSA) is not Ed25519"},
      {"unknown type", unhex("08041240") + key64, "unknown key type 4"},
      {"huge type", unhex("08ffffffffffffffffff011240") + key64, "unknown key type"},
      {"short", unhex("0801123f") + key64.substr(0, 63), "63 bytes"},
      {"long", unhex("08011241") + key64 + "x", "65 bytes"},
      {"seed only", unhex("08011220") + key64.substr(0, 32), "32 bytes"},
      {"mismatched public half", unhex("08011240") + mismatched, "does not match"},
      {"truncated", priv.substr(0, 40), "malformed"},
      {"duplicate type", unhex("08010801") + priv.substr(2), "appears twice"},
      {"duplicate data", priv + priv.substr(2), "appears twice"},
      {"unknown field", priv + unhex("1801"), "unknown field 3"},
      {"type as bytes", unhex("0a0101") + priv.substr(2), "wire type"},
      {"data as varint", unhex("08011001"), "wire type"},
      {"garbage", unhex("ffffffff"), "PrivateKey protobuf"},
  };
  for (const auto& c : cases) {
    auto r = Identity::from_protobuf(c.proto);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << c.name << ": " << r.error().message;
  }
}

TEST(PublicKey, FromProtobufChecksTypesAndLengths) {
  EXPECT_FALSE(PublicKey::from_protobuf(unhex("0801121f") + Bytes(31, 'a')).ok());
  EXPECT_FALSE(PublicKey::from_protobuf(unhex("08011221") + Bytes(33, 'a')).ok());
  EXPECT_FALSE(PublicKey::from_protobuf(unhex("08051220") + Bytes(32, 'a')).ok());
  EXPECT_FALSE(PublicKey::from_protobuf(unhex("0801")).ok());
  EXPECT_FALSE(PublicKey::from_protobuf(unhex("1220") + Bytes(32, 'a')).ok());
  EXPECT_FALSE(PublicKey::from_protobuf(unhex("08001200")).ok());  // empty RSA key
  auto err = PublicKey::from_protobuf(unhex("0801121f") + Bytes(31, 'a'));
  EXPECT_NE(err.error().message.find("Ed25519 key is 31 bytes"), std::string::npos) << err.error().message;

  // Other key types parse (they can still be named and hashed into peer ids) but do not verify.
  auto secp = PublicKey::from_protobuf(unhex("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"));
  ASSERT_TRUE(secp.ok()) << secp.error().message;
  EXPECT_EQ(secp->type, KeyType::Secp256k1);
  EXPECT_FALSE(secp->verify("m", Bytes(64, 'x')));
  auto ecdsa = PublicKey::from_protobuf(unhex(
      "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f162a4bc901"
      "d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62"));
  ASSERT_TRUE(ecdsa.ok()) << ecdsa.error().message;
  EXPECT_EQ(ecdsa->type, KeyType::ECDSA);
  EXPECT_EQ(ecdsa->peer_id().to_base58().rfind("Qm", 0), 0u);  // > 42 bytes: sha2-256 multihash
}

// ---- load_or_create ----

TEST(IdentityFile, CreatesWithMode0600AndReloads) {
  TempDir dir;
  const fs::path path = dir.path() / "identity.key";
  auto created = Identity::load_or_create(path);
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_TRUE(fs::is_regular_file(path));
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(read_file(path), created->to_protobuf());

  auto loaded = Identity::load_or_create(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->peer_id(), created->peer_id());
  EXPECT_EQ(read_file(path), created->to_protobuf());

  // Nothing else (no temp file) is left in the directory.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(IdentityFile, LoadsAnExistingKeyFile) {
  TempDir dir;
  const fs::path path = dir.path() / "identity.key";
  write_file(path, unhex(kSpecPrivateKey));
  auto id = Identity::load_or_create(path);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->peer_id().to_base58(), kSpecPeerId);
  EXPECT_EQ(to_hex(read_file(path)), kSpecPrivateKey);
}

TEST(IdentityFile, CreatesMissingParentDirectories) {
  TempDir dir;
  const fs::path path = dir.path() / "a" / "b" / "c" / "identity.key";
  auto id = Identity::load_or_create(path);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(fs::is_regular_file(path));
  EXPECT_EQ(mode_of(dir.path() / "a"), 0700u);
  EXPECT_EQ(mode_of(dir.path() / "a" / "b" / "c"), 0700u);
  auto again = Identity::load_or_create(path);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->peer_id(), id->peer_id());
}

TEST(IdentityFile, CorruptFilesAreErrorsAndNeverOverwritten) {
  TempDir dir;
  const fs::path path = dir.path() / "identity.key";
  Bytes random(100, '\0');
  randombytes_buf(random.data(), random.size());
  random[0] = '\xff';  // never a valid field-1 tag
  const Bytes priv = unhex(kSpecPrivateKey);
  const std::vector<std::pair<const char*, Bytes>> cases = {
      {"random bytes", random},
      {"rsa key type", unhex("08001240") + priv.substr(4)},
      {"truncated", priv.substr(0, 40)},
      {"wrong length", unhex("08011220") + priv.substr(4, 32)},
      {"empty", ""},
      {"too large", Bytes(5000, 'x')},
  };
  for (const auto& [name, content] : cases) {
    write_file(path, content);
    auto r = Identity::load_or_create(path);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.error().message.find(path.string()), std::string::npos) << name << ": " << r.error().message;
    EXPECT_EQ(read_file(path), content) << name << ": file was modified";
  }
  write_file(path, unhex("08001240") + priv.substr(4));
  auto rsa = Identity::load_or_create(path);
  ASSERT_FALSE(rsa.ok());
  EXPECT_EQ(rsa.error().message, "identity file " + path.string() + ": key type 0 (RSA) is not Ed25519");
}

TEST(IdentityFile, DirectoryAtPathIsAnError) {
  TempDir dir;
  const fs::path path = dir.path() / "identity.key";
  fs::create_directory(path);
  auto r = Identity::load_or_create(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(path.string()), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("directory"), std::string::npos) << r.error().message;
  EXPECT_TRUE(fs::is_directory(path));
}

TEST(IdentityFile, ParentIsAFileIsAnError) {
  TempDir dir;
  const fs::path parent = dir.path() / "not_a_dir";
  write_file(parent, "keep me");
  auto r = Identity::load_or_create(parent / "identity.key");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not_a_dir"), std::string::npos) << r.error().message;
  EXPECT_EQ(read_file(parent), "keep me");
}

TEST(IdentityFile, DanglingSymlinkIsAnError) {
  TempDir dir;
  const fs::path path = dir.path() / "identity.key";
  fs::create_symlink(dir.path() / "missing-target", path);
  auto r = Identity::load_or_create(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir.path() / "missing-target"));
}

// Runs load_or_create(path) and returns its error message ("" on success). As root, mode 000 does
// not stop reads, so the call then runs in a child process that has dropped to uid/gid 65534.
std::string load_error_as_unprivileged(const fs::path& path) {
  if (::geteuid() != 0) {
    auto r = Identity::load_or_create(path);
    return r.ok() ? "" : r.error().message;
  }
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    auto r = Identity::load_or_create(path);
    std::string msg = r.ok() ? "" : r.error().message;
    ssize_t w = ::write(fds[1], msg.data(), msg.size());
    ::_exit(w == static_cast<ssize_t>(msg.size()) ? 0 : 3);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child failed with status " + std::to_string(status);
  return msg;
}

TEST(IdentityFile, UnreadableFileIsAnError) {
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  const fs::path path = dir.path() / "identity.key";
  write_file(path, unhex(kSpecPrivateKey));
  fs::permissions(path, fs::perms::none);
  const std::string err = load_error_as_unprivileged(path);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_NE(err.find("identity file " + path.string()), std::string::npos) << err;
  EXPECT_NE(err.find("cannot be read"), std::string::npos) << err;
  EXPECT_EQ(to_hex(read_file(path)), kSpecPrivateKey);
}

TEST(IdentityFile, ConcurrentCreatorsAgreeOnOneKey) {
  TempDir dir;
  const fs::path path = dir.path() / "sub" / "identity.key";
  constexpr int kThreads = 8;
  std::vector<Bytes> ids(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = Identity::load_or_create(path);
      if (r.ok()) ids[i] = r->peer_id().bytes();
      else errors[i] = r.error().message;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(errors[i], "") << i;
    EXPECT_EQ(ids[i], ids[0]) << i;
  }
  auto final_id = Identity::load_or_create(path);
  ASSERT_TRUE(final_id.ok());
  EXPECT_EQ(final_id->peer_id().bytes(), ids[0]);
}

TEST(IdentityFile, EmptyPathIsAnError) {
  EXPECT_FALSE(Identity::load_or_create("").ok());
}

}  // namespace
}  // namespace punchgate
