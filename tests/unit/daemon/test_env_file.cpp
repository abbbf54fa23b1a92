#include "daemon/env_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

using namespace punchgate;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

EnvVars parse_ok(std::string_view text) {
  auto r = parse_env_file(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message) << "\n--- input:\n" << text;
  return r.ok() ? *r : EnvVars{};
}

std::string parse_error(std::string_view text) {
  auto r = parse_env_file(text);
  EXPECT_FALSE(r.ok()) << "parsed without error:\n" << text;
  return r.ok() ? "" : r.error().message;
}

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

// Values a node's flags really produce, and everything systemd treats specially.
const EnvVars kNasty = {
    {"PUNCHGATE_LISTEN", "/ip4/0.0.0.0/udp/4001/quic-v1,/ip6/::/udp/4001/quic-v1"},
    {"PUNCHGATE_EXPOSE", "v6=[::1]:80,web=127.0.0.1:8080/udp"},
    {"PUNCHGATE_IDENTITY", "/home/a b/keys, with comma/my node key.key"},
    {"SPACES", "  leading and trailing  "},
    {"QUOTES", R"(it's "quoted" ''"")"},
    {"BACKSLASHES", R"(C:\path\\share\ and \" and \$ and \n and trailing\)"},
    {"SHELLISH", "$HOME ${HOME} $(id) `id` %h %%"},
    {"COMMENTISH", "#not a comment ;nor this"},
    {"EQUALS", "a=b==c="},
    {"UNICODE", "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x94\x91 \xe4\xb8\xad"},
    {"TABS", "\tin\tside\t"},
    {"EMPTY", ""},
    {"ONLY_BACKSLASH", "\\"},
    {"ESCAPED_LIST", "a\\,b,c\\\\"},
};

}  // namespace

TEST(EnvFile, RenderQuotesAndEscapesOnlyWhatSystemdUnescapes) {
  const std::string text = render_env_file({{"A", "x\"y\\z$w`v'u #;=,"}, {"B", ""}});
  EXPECT_TRUE(contains(text, "\nA=\"x\\\"y\\\\z\\$w\\`v'u #;=,\"\n")) << text;
  EXPECT_TRUE(contains(text, "\nB=\"\"\n")) << text;
  EXPECT_EQ(text.back(), '\n');
  // The header is comments only.
  for (auto& [k, v] : parse_ok(text)) EXPECT_TRUE(k == "A" || k == "B") << k;
}

TEST(EnvFile, RoundTripsNastyValues) {
  ASSERT_TRUE(check_env_vars(kNasty).ok());
  EXPECT_EQ(parse_ok(render_env_file(kNasty)), kNasty);
}

TEST(EnvFile, RoundTripsRandomValues) {
  // Bytes drawn from everything special (and multi-byte UTF-8), including newlines and CR,
  // which render writes raw inside the quotes and systemd v252 reads back as they are.
  const std::vector<std::string> atoms = {"a", "Z", "0", " ", "\t", "\n", "\r", "\"", "'", "\\", "$", "`", "#",
                                          ";", "=", ",", "[", "]", ":", "{", "}", "\xc3\xa9", "\xf0\x9f\x94\x91",
                                          "\x01", "\x7f"};
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    EnvVars vars;
    size_t n = rng() % 4 + 1;
    for (size_t i = 0; i < n; ++i) {
      std::string v;
      size_t len = rng() % 12;
      for (size_t j = 0; j < len; ++j) v += atoms[rng() % atoms.size()];
      vars.emplace_back("K" + std::to_string(i), v);
    }
    auto back = parse_env_file(render_env_file(vars));
    ASSERT_TRUE(back.ok()) << back.error().message;
    ASSERT_EQ(*back, vars) << render_env_file(vars);
  }
}

// Expected values checked against systemd 252's own reader (load_env_file in
// libsystemd-shared-252.so, plus the cleanup EnvironmentFile= applies).
TEST(EnvFile, ReadsSystemdSyntaxLikeSystemd) {
  const std::string text =
      "# comment\n"
      "  ; another comment\n"
      "\n"
      "PLAIN=value\n"
      "  SPACED  =   inner  blanks kept   \n"
      "SINGLE='no \\escapes\\ $HOME \"x\"'\n"
      "DOUBLE=\"a\\qb \\$c \\`d \\\\e \\\"f\"\n"
      "CONCAT='x'\"y\" z\n"
      "QUOTE_INSIDE=foo \"bar\"  \n"
      "QUOTED_THEN=\"x\"y\"z\"\n"
      "UNQUOTED_ESC=\\\"x\\\" \\ y\\ \n"
      "CONTINUED=one\\\ntwo\n"
      "DQ_CONTINUED=\"one\\\ntwo\"\n"
      "DQ_NEWLINE=\"l1\nl2\"\n"
      "NOEXPAND=$HOME ${HOME}\n"
      "HASH=x # not a comment\n"
      "EMPTY=\n"
      "EMPTY_QUOTES=''\n"
      "CRLF=win\r\n"
      "REPEATED=1\n"
      "lower_case=ok\n"
      "REPEATED=2\n"
      "TRAILING_BACKSLASH=x\\";
  const EnvVars want = {
      {"PLAIN", "value"},
      {"SPACED", "inner  blanks kept"},
      {"SINGLE", "no \\escapes\\ $HOME \"x\""},
      {"DOUBLE", "a\\qb $c `d \\e \"f"},
      {"CONCAT", "xyz"},
      {"QUOTE_INSIDE", "foo \"bar\""},
      {"QUOTED_THEN", "xy\"z\""},
      {"UNQUOTED_ESC", "\"x\"  y "},
      {"CONTINUED", "onetwo"},
      {"DQ_CONTINUED", "onetwo"},
      {"DQ_NEWLINE", "l1\nl2"},
      {"NOEXPAND", "$HOME ${HOME}"},
      {"HASH", "x # not a comment"},
      {"EMPTY", ""},
      {"EMPTY_QUOTES", ""},
      {"CRLF", "win"},
      {"REPEATED", "2"},
      {"lower_case", "ok"},
      {"TRAILING_BACKSLASH", "x"},
  };
  EXPECT_EQ(parse_ok(text), want);
}

TEST(EnvFile, ErrorsNameTheLine) {
  EXPECT_TRUE(contains(parse_error("A=1\nexport B=2\n"), "line 2")) << parse_error("A=1\nexport B=2\n");
  EXPECT_TRUE(contains(parse_error("A=1\nexport B=2\n"), "export"));
  EXPECT_TRUE(contains(parse_error("A=1\n\nNOEQUALS\nB=2\n"), "line 3"));
  EXPECT_TRUE(contains(parse_error("A=1\nNOEQUALS"), "line 2"));
  EXPECT_TRUE(contains(parse_error("1A=x\n"), "line 1"));
  EXPECT_TRUE(contains(parse_error("A B=x\n"), "invalid variable name"));
  EXPECT_TRUE(contains(parse_error("A=1\n=x\n"), "line 2"));
  EXPECT_TRUE(contains(parse_error("A=1\nB=\"open\n\nmore"), "line 2: unterminated double quote"));
  EXPECT_TRUE(contains(parse_error("A='open"), "line 1: unterminated single quote"));
  EXPECT_TRUE(contains(parse_error("A=1\nB=a\0b\n"s), "line 2: NUL"));
  EXPECT_TRUE(contains(parse_error("A=1\nB=\xff\n"), "line 2"));
  EXPECT_TRUE(contains(parse_error("A=\"\xed\xa0\x80\"\n"), "UTF-8"));  // a surrogate
  EXPECT_TRUE(contains(parse_error("A=\xef\xbf\xbe\n"), "UTF-8"));      // U+FFFE
  EXPECT_TRUE(contains(parse_error("A=\xc0\xaf\n"), "UTF-8"));          // overlong '/'
  EXPECT_TRUE(contains(parse_error("# note \\\nA=1\n"), "line 1: comment ends with a backslash"));
  EXPECT_TRUE(contains(parse_error(std::string(kMaxEnvFileSize + 1, '#')), "limit"));
  // A backslash elsewhere in a comment is fine.
  EXPECT_EQ(parse_ok("# C:\\dir \\ x\nA=1\n"), (EnvVars{{"A", "1"}}));
}

TEST(EnvFile, CheckRefusesWhatSystemdWouldDropOrMangle) {
  EXPECT_TRUE(check_env_vars(kNasty).ok());
  auto bad = [](EnvVars v) {
    auto st = check_env_vars(v);
    EXPECT_FALSE(st.ok());
    return st.ok() ? "" : st.error().message;
  };
  EXPECT_TRUE(contains(bad({{"A", "line1\nline2"}}), "A"));
  EXPECT_TRUE(contains(bad({{"A", "cr\r"}}), "\\x0d"));
  EXPECT_TRUE(contains(bad({{"A", "del\x7f"}}), "\\x7f"));
  EXPECT_TRUE(contains(bad({{"A", "nul\0x"s}}), "\\x00"));
  EXPECT_TRUE(contains(bad({{"A", "\xff"}}), "UTF-8"));
  EXPECT_TRUE(contains(bad({{"1A", "x"}}), "1A"));
  EXPECT_TRUE(contains(bad({{"A-B", "x"}}), "A-B"));
  EXPECT_TRUE(contains(bad({{"", "x"}}), "name"));
  EXPECT_TRUE(contains(bad({{"A", "1"}, {"A", "2"}}), "twice"));
}

class EnvFileOnDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pg-envfile-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static mode_t mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  fs::path dir_;
};

TEST_F(EnvFileOnDisk, WriteCreatesPrivateDirAndFileAndKeepsBackup) {
  const fs::path path = dir_ / "conf dir" / "nested" / "punchgate.env";
  const EnvVars first = {{"PUNCHGATE_LISTEN", "/ip4/127.0.0.1/udp/0/quic-v1"}};
  ASSERT_TRUE(write_env_file(path, first).ok());
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(path.parent_path()), 0700u);
  EXPECT_EQ(mode_of(path.parent_path().parent_path()), 0700u);
  EXPECT_FALSE(fs::exists(path.native() + ".bak"));
  const std::string first_text = slurp(path);
  EXPECT_EQ(first_text, render_env_file(first));

  ASSERT_TRUE(write_env_file(path, kNasty).ok());
  EXPECT_EQ(slurp(path.native() + ".bak"), first_text);
  EXPECT_EQ(mode_of(path.native() + ".bak"), 0600u);
  auto back = read_env_file(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, kNasty);
  // No temp files left next to it.
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(path.parent_path())) ++entries;
  EXPECT_EQ(entries, 2u);
}

TEST_F(EnvFileOnDisk, RefusedValuesLeaveTheFileAlone) {
  const fs::path path = dir_ / "punchgate.env";
  ASSERT_TRUE(write_env_file(path, {{"A", "1"}}).ok());
  const std::string before = slurp(path);
  auto st = write_env_file(path, {{"A", "two\nlines"}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(slurp(path), before);
  EXPECT_FALSE(fs::exists(path.native() + ".bak"));
}

TEST_F(EnvFileOnDisk, ReadErrorsNameTheFileAndLine) {
  const fs::path path = dir_ / "bad.env";
  std::ofstream(path) << "A=1\nexport B=2\n";
  auto r = read_env_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, path.string())) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "line 2")) << r.error().message;
  auto missing = read_env_file(dir_ / "missing.env");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.error().message, "missing.env")) << missing.error().message;
}
