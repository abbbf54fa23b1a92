// The service's configuration file: PUNCHGATE_* variables, one KEY="value" per line, in the
// syntax systemd's EnvironmentFile= reads, so the same file drives systemd, launchd (through
// `punchgate --env-file`) and the fallback supervisor.
#pragma once

#include "punchgate/core/result.hpp"

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace punchgate {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

// Largest env file parse_env_file / read_env_file accept.
inline constexpr size_t kMaxEnvFileSize = 1 << 20;

// One `KEY="value"` line per variable after a comment header. Inside the double quotes only
// `"`, `\`, `$` and backquote get a backslash: those are the characters systemd (v252's
// env-file.c) unescapes there; it keeps the backslash before anything else, and it does no $VAR
// expansion in an EnvironmentFile. Every other byte is written as is, so systemd reads back
// exactly the value given, for any value parse_env_file can return (valid UTF-8, no NUL).
std::string render_env_file(const EnvVars& vars);
// Reads what render_env_file writes and what a person may add (comments starting with # or ;,
// blank lines, unquoted and single-quoted values, backslash escapes), value for value the way
// systemd v252 reads an EnvironmentFile. Stricter where systemd would silently skip or where
// systemd versions differ: a line without '=', an invalid name (including `export NAME=`), a
// NUL byte, invalid UTF-8, an unterminated quote, and a comment ending in a backslash are
// errors naming the line. A repeated name keeps the last value, as in systemd.
Result<EnvVars> parse_env_file(std::string_view text);

// What write_env_file accepts: names [A-Za-z_][A-Za-z0-9_]*, each once; values valid UTF-8
// without control characters other than tab. Newlines are refused rather than written inside
// the quotes: systemd v252 would read them back, but older releases drop such variables (they
// allowed only tab), and one variable per line keeps the file readable. Errors name the key.
Status check_env_vars(const EnvVars& vars);

// check_env_vars, then an atomic write: temp file (0600) + fsync + rename; the previous file is
// kept as <path>.bak (0600); parent directory created 0700 when missing.
Status write_env_file(const std::filesystem::path& path, const EnvVars& vars);
Result<EnvVars> read_env_file(const std::filesystem::path& path);

}  // namespace punchgate
