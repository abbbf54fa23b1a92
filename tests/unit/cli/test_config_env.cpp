// `punchgate up` turns its flags into PUNCHGATE_* variables for the env file; parsing those back
// (as the service does) must give the same configuration, awkward values included.
#include "cli/config.hpp"
#include "daemon/env_file.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace punchgate {
namespace {

const char* kVars[] = {"PUNCHGATE_IDENTITY", "PUNCHGATE_LISTEN", "PUNCHGATE_BOOTSTRAP", "PUNCHGATE_EXPOSE",
                       "PUNCHGATE_TUNNEL", "PUNCHGATE_TUNNEL_BY_NAME", "PUNCHGATE_ALLOW", "PUNCHGATE_MDNS", "PUNCHGATE_HOLEPUNCH", "PUNCHGATE_HARD_NAT",
                       "PUNCHGATE_PORT_MAPPING", "PUNCHGATE_PORT_MAPPING_LEASE",
                       "PUNCHGATE_CONTROL_SOCKET", "PUNCHGATE_LOG"};

void clear_vars() {
  for (const char* v : kVars) unsetenv(v);
}

Config parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int code = 0;
  auto cfg = parse_command_line(static_cast<int>(argv.size()), argv.data(), code);
  EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
  return cfg.ok() ? *cfg : Config{};
}

std::vector<std::string> strings(const auto& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.to_string());
  return out;
}

const std::string kPeerA = "12D3KooWAbgpdfwH9oWwakFP1GbGeS6qWKQ9vcFsqB1utLwsqp1U";
const std::string kPeerB = "12D3KooWDHUK6psFTtM2XQ9jAXECypuUNa3DQj53c21ZyiL4oqC6";

TEST(ConfigEnv, UpFlagsRoundTripThroughTheEnvFile) {
  clear_vars();
  setenv("PUNCHGATE_LOG", "debug", 1);
  Config up = parse({"punchgate", "up", "--identity", "/tmp/keys, with comma/my key \\ \"q\" $HOME.key", "--listen",
                     "/ip4/127.0.0.1/udp/4001/quic-v1", "--listen", "/ip6/::1/udp/4001/quic-v1", "--bootstrap",
                     "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + kPeerA, "--expose", "ssh=127.0.0.1:22", "--expose",
                     "v6=[::1]:8080", "--expose", "dns=localhost:53/udp", "--tunnel", kPeerA + ":ssh@[::1]:2222",
                     "--tunnel-by-name", "web@127.0.0.1:8080", "--tunnel-by-name", "dns@[::1]:5353/udp", "--allow",
                     kPeerA, "--allow", kPeerB, "--no-mdns", "--control-socket", "/tmp/ctl dir, x/control.sock"});
  ASSERT_EQ(up.command, Command::Up);
  std::string file = render_env_file(up.service_env);
  auto vars = parse_env_file(file);
  ASSERT_TRUE(vars.ok()) << vars.error().message << "\n" << file;
  EXPECT_EQ(*vars, up.service_env) << file;

  clear_vars();
  for (const auto& [k, v] : *vars) setenv(k.c_str(), v.c_str(), 1);
  Config back = parse({"punchgate"});
  EXPECT_EQ(back.command, Command::Run);
  EXPECT_EQ(back.identity_path, up.identity_path);
  EXPECT_EQ(back.identity_path.string(), "/tmp/keys, with comma/my key \\ \"q\" $HOME.key");
  EXPECT_EQ(strings(back.listen), strings(up.listen));
  EXPECT_EQ(strings(back.bootstrap), strings(up.bootstrap));
  EXPECT_EQ(strings(back.exposes), strings(up.exposes));
  EXPECT_EQ(strings(back.tunnels), strings(up.tunnels));
  ASSERT_EQ(back.tunnels.size(), 3u);
  EXPECT_TRUE(back.tunnels[1].peer.empty());  // by name stays by name
  EXPECT_EQ(back.allow.size(), 2u);
  EXPECT_FALSE(back.mdns);
  EXPECT_EQ(back.control_socket, "/tmp/ctl dir, x/control.sock");
  EXPECT_STREQ(std::getenv("PUNCHGATE_LOG"), "debug");
  clear_vars();
}

TEST(ConfigEnv, DefaultsAreWrittenExplicitly) {
  clear_vars();
  setenv("HOME", "/home/someone", 1);
  unsetenv("XDG_DATA_HOME");
  Config up = parse({"punchgate", "up"});
  EnvVars want = {{"PUNCHGATE_IDENTITY", "/home/someone/.local/share/punchgate/identity.key"},
                  {"PUNCHGATE_LISTEN", "/ip4/0.0.0.0/udp/0/quic-v1"},
                  {"PUNCHGATE_MDNS", "true"},
                  {"PUNCHGATE_HOLEPUNCH", "true"},
                  {"PUNCHGATE_HARD_NAT", "true"},
                  {"PUNCHGATE_PORT_MAPPING", "true"}};
  EXPECT_EQ(up.service_env, want);
}

TEST(ConfigEnv, HolePunchSwitchFromFlagOrEnv) {
  clear_vars();
  EXPECT_TRUE(parse({"punchgate"}).holepunch);
  EXPECT_FALSE(parse({"punchgate", "--no-holepunch"}).holepunch);
  setenv("PUNCHGATE_HOLEPUNCH", "false", 1);
  EXPECT_FALSE(parse({"punchgate"}).holepunch);
  EXPECT_TRUE(parse({"punchgate", "--holepunch"}).holepunch);  // the command line wins
  EXPECT_TRUE(parse({"punchgate"}).hard_nat);
  EXPECT_FALSE(parse({"punchgate", "--no-hard-nat"}).hard_nat);
  setenv("PUNCHGATE_HOLEPUNCH", "maybe", 1);
  std::string arg0 = "punchgate";
  char* argv[] = {arg0.data()};
  int code = 0;
  auto bad = parse_command_line(1, argv, code);
  ASSERT_FALSE(bad);
  EXPECT_EQ(code, 2);
  EXPECT_NE(bad.error().message.find("PUNCHGATE_HOLEPUNCH \"maybe\""), std::string::npos);
  clear_vars();
}

TEST(ConfigEnv, PortMappingSwitchFromFlagOrEnv) {
  clear_vars();
  EXPECT_TRUE(parse({"punchgate"}).port_mapping);
  EXPECT_FALSE(parse({"punchgate", "--no-port-mapping"}).port_mapping);
  Config up = parse({"punchgate", "up", "--no-port-mapping"});
  EXPECT_NE(std::find(up.service_env.begin(), up.service_env.end(),
                      std::pair<std::string, std::string>{"PUNCHGATE_PORT_MAPPING", "false"}),
            up.service_env.end());
  setenv("PUNCHGATE_PORT_MAPPING", "false", 1);
  EXPECT_FALSE(parse({"punchgate"}).port_mapping);
  EXPECT_TRUE(parse({"punchgate", "--port-mapping"}).port_mapping);  // the command line wins
  EXPECT_EQ(parse({"punchgate"}).port_mapping_lease_s, 3600u);
  EXPECT_EQ(parse({"punchgate", "--port-mapping-lease", "600"}).port_mapping_lease_s, 600u);
  Config up_lease = parse({"punchgate", "up", "--port-mapping-lease", "120"});
  EXPECT_NE(std::find(up_lease.service_env.begin(), up_lease.service_env.end(),
                      std::pair<std::string, std::string>{"PUNCHGATE_PORT_MAPPING_LEASE", "120"}),
            up_lease.service_env.end());
  setenv("PUNCHGATE_PORT_MAPPING_LEASE", "45", 1);
  EXPECT_EQ(parse({"punchgate"}).port_mapping_lease_s, 45u);
  EXPECT_EQ(parse({"punchgate", "--port-mapping-lease", "60"}).port_mapping_lease_s, 60u);
  for (const char* bad : {"9", "604801", "1h", "-5", "4294967306"}) {
    std::string a0 = "punchgate", a1 = "--port-mapping-lease", a2 = bad;
    char* args[] = {a0.data(), a1.data(), a2.data()};
    int rc = 0;
    auto r = parse_command_line(3, args, rc);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(rc, 2);
    EXPECT_NE(r.error().message.find(std::string("--port-mapping-lease \"") + bad + "\""), std::string::npos)
        << r.error().message;
  }
  unsetenv("PUNCHGATE_PORT_MAPPING_LEASE");
  setenv("PUNCHGATE_PORT_MAPPING", "sometimes", 1);
  std::string arg0 = "punchgate";
  char* argv[] = {arg0.data()};
  int code = 0;
  auto bad = parse_command_line(1, argv, code);
  ASSERT_FALSE(bad);
  EXPECT_EQ(code, 2);
  EXPECT_NE(bad.error().message.find("PUNCHGATE_PORT_MAPPING \"sometimes\""), std::string::npos);
  clear_vars();
}

TEST(ConfigEnv, ListItemsMayHoldCommasAndBackslashes) {
  std::vector<std::string> items = {"a,b", "c\\d", " e ", "\\,"};
  std::string joined = join_env_list(items);
  EXPECT_EQ(joined, "a\\,b,c\\\\d, e ,\\\\\\,");
  EXPECT_EQ(split_env_list(joined), (std::vector<std::string>{"a,b", "c\\d", "e", "\\,"}));
  EXPECT_EQ(split_env_list(" x , ,y,"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(split_env_list("trailing\\"), (std::vector<std::string>{"trailing\\"}));
}

}  // namespace
}  // namespace punchgate
