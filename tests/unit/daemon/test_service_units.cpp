#include "daemon/service_units.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

using namespace punchgate;
using namespace std::string_literals;

namespace {

ServiceUnitParams params(std::string binary, std::string home) {
  ServiceUnitParams p;
  p.binary = binary;
  p.paths.config_dir = home + "/.config/punchgate";
  p.paths.env_file = home + "/.config/punchgate/punchgate.env";
  p.paths.state_dir = home + "/.local/state/punchgate";
  p.paths.log_file = home + "/.local/state/punchgate/punchgate.log";
  return p;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The one line starting with `key=` (fails the test when there is not exactly one).
std::string directive(const std::string& unit, const std::string& key) {
  std::string found;
  int n = 0;
  for (const auto& line : lines_of(unit)) {
    if (line.rfind(key + "=", 0) == 0) {
      found = line;
      ++n;
    }
  }
  EXPECT_EQ(n, 1) << key << " in:\n" << unit;
  return found;
}

bool has_key(const std::string& unit, const std::string& key) {
  for (const auto& line : lines_of(unit)) {
    if (line.rfind(key + "=", 0) == 0) return true;
  }
  return false;
}

TEST(SystemdUserUnit, ExactTextWithSpacesInPaths) {
  const std::string unit = render_systemd_user_unit(params("/opt/my apps/punchgate", "/home/ann lee"));
  EXPECT_EQ(unit,
            "# Written by `punchgate up` and removed by `punchgate down`; the settings live in the\n"
            "# environment file (PUNCHGATE_* variables), so edit that (or run `punchgate up` again).\n"
            "[Unit]\n"
            "Description=punchgate peer-to-peer tunnel node\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n"
            "StartLimitIntervalSec=120\n"
            "StartLimitBurst=10\n"
            "\n"
            "[Service]\n"
            "Type=exec\n"
            "ExecStart=\"/opt/my apps/punchgate\"\n"
            "EnvironmentFile=/home/ann lee/.config/punchgate/punchgate.env\n"
            "SyslogIdentifier=punchgate\n"
            "Restart=on-failure\n"
            "RestartSec=2s\n"
            "\n"
            "[Install]\n"
            "WantedBy=default.target\n");
}

TEST(SystemdUserUnit, PercentIsEscapedAsSpecifier) {
  const std::string unit = render_systemd_user_unit(params("/opt/100%/punchgate", "/home/50%h"));
  EXPECT_EQ(directive(unit, "ExecStart"), "ExecStart=\"/opt/100%%/punchgate\"");
  EXPECT_EQ(directive(unit, "EnvironmentFile"), "EnvironmentFile=/home/50%%h/.config/punchgate/punchgate.env");
}

TEST(SystemdUserUnit, NonAsciiBinaryIsHexEscapedInsideQuotes) {
  // systemd rejects a line that is not UTF-8, and C-unescapes \xNN inside the quotes.
  const std::string unit = render_systemd_user_unit(params("/opt/j\xc3\xbcrgen/punchgate", "/home/a"));
  EXPECT_EQ(directive(unit, "ExecStart"), "ExecStart=\"/opt/j\\xc3\\xbcrgen/punchgate\"");
}

TEST(SystemdUserUnit, BinaryPathSystemdRefusesGoesThroughSh) {
  // Quotes, backslashes, `$` and control bytes: systemd refuses them in an executable name
  // ("contains special characters"), so the path becomes an argument of sh, where `$` is
  // doubled (systemd substitutes $VAR in arguments) and the rest is C-escaped.
  const std::string unit =
      render_systemd_user_unit(params("/opt/it's \"x\"\\$HOME%\n/punchgate", "/home/a"));
  EXPECT_EQ(directive(unit, "ExecStart"),
            "ExecStart=/bin/sh -c 'exec \"$$0\" \"$$@\"' \"/opt/it's \\\"x\\\"\\\\$$HOME%%\\x0a/punchgate\"");
  EXPECT_EQ(directive(unit, "EnvironmentFile"), "EnvironmentFile=/home/a/.config/punchgate/punchgate.env");
}

TEST(SystemdUserUnit, UnnormalizedBinaryPathGoesThroughSh) {
  const std::string unit = render_systemd_user_unit(params("/opt//bin/./punchgate", "/home/a"));
  EXPECT_EQ(directive(unit, "ExecStart"), "ExecStart=/bin/sh -c 'exec \"$$0\" \"$$@\"' \"/opt//bin/./punchgate\"");
}

TEST(SystemdUserUnit, EnvFilePathEnvironmentFileCannotHoldIsPassedAsFlag) {
  // EnvironmentFile= has no quoting: a newline or non-ASCII byte, a trailing blank or
  // backslash cannot be written there, so the daemon reads the file itself (--env-file).
  for (const std::string& home : {"/home/a\nb"s, "/home/j\xc3\xbcrgen"s, "/home/tab\tx"s}) {
    const std::string unit = render_systemd_user_unit(params("/usr/bin/punchgate", home));
    EXPECT_FALSE(has_key(unit, "EnvironmentFile")) << unit;
    EXPECT_EQ(directive(unit, "ExecStart").rfind("ExecStart=\"/usr/bin/punchgate\" --env-file \"/home/", 0), 0u)
        << unit;
  }
  ServiceUnitParams p = params("/usr/bin/punchgate", "/home/a");
  p.paths.env_file = "/home/a/env$x \\";
  std::string unit = render_systemd_user_unit(p);
  EXPECT_FALSE(has_key(unit, "EnvironmentFile")) << unit;
  EXPECT_EQ(directive(unit, "ExecStart"), "ExecStart=\"/usr/bin/punchgate\" --env-file \"/home/a/env$$x \\\\\"");

  p.paths.env_file = "/home/a/trailing ";
  unit = render_systemd_user_unit(p);
  EXPECT_EQ(directive(unit, "ExecStart"), "ExecStart=\"/usr/bin/punchgate\" --env-file \"/home/a/trailing \"");

  p.paths.env_file = "/home/a/\n[Service]\nExecStartPre=/bin/evil";
  unit = render_systemd_user_unit(p);
  EXPECT_FALSE(has_key(unit, "ExecStartPre")) << unit;
  EXPECT_EQ(lines_of(unit).size(), 18u) << unit;  // no EnvironmentFile=
}

TEST(SystemdUserUnit, NewlinesNeverSplitALine) {
  ServiceUnitParams p = params("/opt/x\n[Install]\nWantedBy=evil.target\n/punchgate", "/home/a");
  p.paths.env_file = "/e\nExecStartPre=/bin/evil";
  const std::string unit = render_systemd_user_unit(p);
  EXPECT_EQ(lines_of(unit).size(), 18u) << unit;  // one line fewer: no EnvironmentFile=
  EXPECT_EQ(directive(unit, "WantedBy"), "WantedBy=default.target");
  EXPECT_FALSE(has_key(unit, "ExecStartPre"));
}

TEST(LaunchdPlist, ExactText) {
  const std::string plist = render_launchd_plist(params("/Applications/Punch Gate/punchgate", "/Users/ann"));
  EXPECT_EQ(plist,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
            "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
            "<!-- Written by `punchgate up` and removed by `punchgate down`; the settings live in the\n"
            "     environment file named in ProgramArguments. -->\n"
            "<plist version=\"1.0\">\n"
            "<dict>\n"
            "\t<key>Label</key>\n"
            "\t<string>com.punchgate.daemon</string>\n"
            "\t<key>ProgramArguments</key>\n"
            "\t<array>\n"
            "\t\t<string>/Applications/Punch Gate/punchgate</string>\n"
            "\t\t<string>--env-file</string>\n"
            "\t\t<string>/Users/ann/.config/punchgate/punchgate.env</string>\n"
            "\t</array>\n"
            "\t<key>RunAtLoad</key>\n"
            "\t<true/>\n"
            "\t<key>KeepAlive</key>\n"
            "\t<dict>\n"
            "\t\t<key>SuccessfulExit</key>\n"
            "\t\t<false/>\n"
            "\t</dict>\n"
            "\t<key>ThrottleInterval</key>\n"
            "\t<integer>10</integer>\n"
            "\t<key>StandardOutPath</key>\n"
            "\t<string>/Users/ann/.local/state/punchgate/punchgate.log</string>\n"
            "\t<key>StandardErrorPath</key>\n"
            "\t<string>/Users/ann/.local/state/punchgate/punchgate.log</string>\n"
            "</dict>\n"
            "</plist>\n");
}

TEST(LaunchdPlist, EveryValueIsXmlEscaped) {
  const std::string plist = render_launchd_plist(params("/opt/a&b<c>/\"q'/punchgate", "/Users/x&<y>"));
  EXPECT_NE(plist.find("\t\t<string>/opt/a&amp;b&lt;c&gt;/&quot;q&apos;/punchgate</string>\n"), std::string::npos)
      << plist;
  EXPECT_NE(plist.find("\t\t<string>/Users/x&amp;&lt;y&gt;/.config/punchgate/punchgate.env</string>\n"),
            std::string::npos)
      << plist;
  EXPECT_NE(plist.find("\t<key>StandardErrorPath</key>\n\t<string>/Users/x&amp;&lt;y&gt;/.local/state/punchgate/"
                       "punchgate.log</string>\n"),
            std::string::npos)
      << plist;
  // No raw markup character survives from the paths: every '<' and '&' left is the renderer's own.
  EXPECT_EQ(plist.find("a&b"), std::string::npos);
  EXPECT_EQ(plist.find("x&<"), std::string::npos);
}

TEST(LaunchdPlist, CarriageReturnIsACharacterReference) {
  // A literal CR would come back as LF from any XML parser.
  const std::string plist = render_launchd_plist(params("/opt/a\rb/punchgate", "/Users/a"));
  EXPECT_NE(plist.find("<string>/opt/a&#13;b/punchgate</string>"), std::string::npos) << plist;
}

}  // namespace
