#include "daemon/service_units.hpp"

#include <fmt/format.h>

#include <string_view>

namespace punchgate {

namespace {

// Restart policy shared by both managers: a crash restarts after a short pause, and a crash
// loop gives up (systemd: 10 starts within 120 s marks the unit failed; launchd: at most one
// spawn per 10 s) so a broken configuration shows up in `punchgate status` instead of spinning.
constexpr int kRestartSec = 2;
constexpr int kStartLimitIntervalSec = 120;
constexpr int kStartLimitBurst = 10;
constexpr int kLaunchdThrottleSec = 10;

// Characters systemd refuses in an executable path (string_is_safe: control bytes, quotes,
// backslash). `$` is allowed there but would be substituted in argv[0], so it goes the same way.
bool exec_path_is_plain(const std::filesystem::path& p) {
  const std::string& s = p.native();
  if (s.empty() || p.lexically_normal().native() != s) return false;  // systemd wants normalized
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '\\' || c == '$') return false;
  }
  return true;
}

// EnvironmentFile= takes the rest of the line verbatim (only %-specifiers expand): no quoting,
// trailing blanks are stripped, a trailing backslash continues the line and the line must be
// UTF-8. Printable ASCII without those endings always survives; anything else goes through
// `--env-file` on the command line, which can carry any byte.
bool env_file_path_is_plain(const std::filesystem::path& p) {
  const std::string& s = p.native();
  if (s.empty() || s.front() != '/' || s.back() == ' ' || s.back() == '\\') return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// One double-quoted ExecStart= word. systemd expands %-specifiers over the whole line first
// (so `%` -> `%%`), then splits words with C unescaping (so `\`, `"` and non-printable bytes
// are escaped), then substitutes $VAR in arguments (so `$` -> `$$` unless `is_path`).
std::string exec_word(std::string_view s, bool is_path) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '%') {
      out += "%%";
    } else if (c == '$' && !is_path) {
      out += "$$";
    } else if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

std::string env_file_value(const std::filesystem::path& p) {
  std::string out;
  for (char c : p.native()) {
    if (c == '%') out.push_back('%');
    out.push_back(c);
  }
  return out;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#13;"; break;  // a literal CR would be read back as LF
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string render_systemd_user_unit(const ServiceUnitParams& p) {
  const bool plain_env = env_file_path_is_plain(p.paths.env_file);
  std::string exec;
  if (exec_path_is_plain(p.binary)) {
    exec = exec_word(p.binary.native(), true);
  } else {
    // A path systemd cannot name as an executable is handed to sh as an argument instead;
    // `exec` keeps punchgate itself as the service's main process.
    exec = "/bin/sh -c 'exec \"$$0\" \"$$@\"' " + exec_word(p.binary.native(), false);
  }
  if (!plain_env) exec += " --env-file " + exec_word(p.paths.env_file.native(), false);

  std::string out;
  out += "# Written by `punchgate up` and removed by `punchgate down`; the settings live in the\n";
  out += "# environment file (PUNCHGATE_* variables), so edit that (or run `punchgate up` again).\n";
  out += "[Unit]\n";
  out += "Description=punchgate peer-to-peer tunnel node\n";
  // The user manager has no network-online.target of its own; this orders nothing there, but
  // keeps the unit the same as the system-wide template.
  out += "After=network-online.target\n";
  out += "Wants=network-online.target\n";
  out += fmt::format("StartLimitIntervalSec={}\n", kStartLimitIntervalSec);
  out += fmt::format("StartLimitBurst={}\n", kStartLimitBurst);
  out += "\n[Service]\n";
  // exec: `systemctl start` fails at once when the binary cannot be executed; punchgate does not
  // fork and logs to stderr, which goes to the journal.
  out += "Type=exec\n";
  out += "ExecStart=" + exec + "\n";
  if (plain_env) out += "EnvironmentFile=" + env_file_value(p.paths.env_file) + "\n";
  out += "SyslogIdentifier=punchgate\n";
  out += "Restart=on-failure\n";
  out += fmt::format("RestartSec={}s\n", kRestartSec);
  out += "\n[Install]\n";
  out += "WantedBy=default.target\n";
  return out;
}

std::string render_launchd_plist(const ServiceUnitParams& p) {
  const std::string log = xml_escape(p.paths.log_file.native());
  std::string out;
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
         "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n";
  out += "<!-- Written by `punchgate up` and removed by `punchgate down`; the settings live in the\n";
  out += "     environment file named in ProgramArguments. -->\n";
  out += "<plist version=\"1.0\">\n";
  out += "<dict>\n";
  out += fmt::format("\t<key>Label</key>\n\t<string>{}</string>\n", xml_escape(kLaunchdLabel));
  out += "\t<key>ProgramArguments</key>\n\t<array>\n";
  out += fmt::format("\t\t<string>{}</string>\n", xml_escape(p.binary.native()));
  out += "\t\t<string>--env-file</string>\n";
  out += fmt::format("\t\t<string>{}</string>\n", xml_escape(p.paths.env_file.native()));
  out += "\t</array>\n";
  out += "\t<key>RunAtLoad</key>\n\t<true/>\n";
  // Restart only after a failure: `punchgate down` stops it with SIGTERM and a clean exit.
  out += "\t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n";
  out += fmt::format("\t<key>ThrottleInterval</key>\n\t<integer>{}</integer>\n", kLaunchdThrottleSec);
  out += fmt::format("\t<key>StandardOutPath</key>\n\t<string>{}</string>\n", log);
  out += fmt::format("\t<key>StandardErrorPath</key>\n\t<string>{}</string>\n", log);
  out += "</dict>\n";
  out += "</plist>\n";
  return out;
}

}  // namespace punchgate
