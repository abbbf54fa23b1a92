#include "daemon/env_file.hpp"

#include "daemon/atomic_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace punchgate {

namespace {

// Character classes of systemd's env-file.c (NEWLINE, WHITESPACE, COMMENTS, SHELL_NEED_ESCAPE).
bool is_newline(char c) { return c == '\n' || c == '\r'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_comment_start(char c) { return c == '#' || c == ';'; }
bool needs_escape_in_quotes(char c) { return c == '"' || c == '\\' || c == '`' || c == '$'; }

// systemd's env_name_is_valid: bash variable name characters, not starting with a digit.
bool is_valid_name(std::string_view k) {
  if (k.empty() || (k[0] >= '0' && k[0] <= '9')) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// systemd's utf8_is_valid: shortest-form sequences of code points up to U+10FFFF, excluding
// surrogates and the noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF, which it also rejects.
bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((b0 & 0xe0) == 0xc0) {
      len = 2;
      cp = b0 & 0x1f;
    } else if ((b0 & 0xf0) == 0xe0) {
      len = 3;
      cp = b0 & 0x0f;
    } else if ((b0 & 0xf8) == 0xf0) {
      len = 4;
      cp = b0 & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t j = 1; j < len; ++j) {
      auto b = static_cast<uint8_t>(s[i + j]);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    const size_t shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (shortest != len || cp > 0x10ffff) return false;
    if ((cp & 0xfffff800) == 0xd800) return false;
    if (cp >= 0xfdd0 && cp <= 0xfdef) return false;
    if ((cp & 0xfffe) == 0xfffe) return false;
    i += len;
  }
  return true;
}

// Names and values quoted in errors: short, control bytes visible.
std::string shown(std::string_view s) {
  constexpr size_t kMaxShown = 60;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// systemd's parse_env_file_internal() states.
enum class State {
  PreKey,
  Key,
  PreValue,
  Value,
  ValueEscape,
  SingleQuote,
  DoubleQuote,
  DoubleQuoteEscape,
  Comment,
  CommentEscape,
};

class Parser {
 public:
  Result<EnvVars> run(std::string_view text) {
    if (text.size() > kMaxEnvFileSize) {
      return make_error("env file of {} bytes exceeds the {} byte limit", text.size(), kMaxEnvFileSize);
    }
    for (char c : text) {
      if (c == '\0') return make_error("line {}: NUL byte", line_);
      PG_TRY(step(c));
      if (c == '\n') ++line_;
    }
    return finish();
  }

 private:
  Status step(char c) {
    switch (state_) {
      case State::PreKey:
        if (is_comment_start(c)) {
          state_ = State::Comment;
        } else if (c == '=') {
          // systemd would take the '=' as part of a name and then drop the line.
          return make_error("line {}: '=' without a variable name before it", line_);
        } else if (!is_space(c)) {
          state_ = State::Key;
          key_line_ = line_;
          key_.assign(1, c);
          key_trailing_space_.reset();
        }
        return {};
      case State::Key:
        if (is_newline(c)) return make_error("line {}: \"{}\" has no '=' (expected NAME=value)", key_line_, shown(key_));
        if (c == '=') {
          state_ = State::PreValue;
          value_.clear();
          value_trailing_space_.reset();
          return {};
        }
        if (!is_space(c)) {
          key_trailing_space_.reset();
        } else if (!key_trailing_space_) {
          key_trailing_space_ = key_.size();
        }
        key_.push_back(c);
        return {};
      case State::PreValue:
        if (is_newline(c)) return push(false);
        if (c == '\'') {
          state_ = State::SingleQuote;
          quote_line_ = line_;
        } else if (c == '"') {
          state_ = State::DoubleQuote;
          quote_line_ = line_;
        } else if (c == '\\') {
          state_ = State::ValueEscape;
        } else if (!is_space(c)) {
          state_ = State::Value;
          value_.push_back(c);
        }
        return {};
      case State::Value:
        if (is_newline(c)) return push(true);
        if (c == '\\') {
          state_ = State::ValueEscape;
          value_trailing_space_.reset();
          return {};
        }
        if (!is_space(c)) {
          value_trailing_space_.reset();
        } else if (!value_trailing_space_) {
          value_trailing_space_ = value_.size();
        }
        value_.push_back(c);
        return {};
      case State::ValueEscape:
        // A backslash outside quotes takes the next byte literally; before a newline it joins
        // the lines.
        state_ = State::Value;
        if (!is_newline(c)) value_.push_back(c);
        return {};
      case State::SingleQuote:
        if (c == '\'') {
          state_ = State::PreValue;
        } else {
          value_.push_back(c);
        }
        return {};
      case State::DoubleQuote:
        if (c == '"') {
          state_ = State::PreValue;
        } else if (c == '\\') {
          state_ = State::DoubleQuoteEscape;
        } else {
          value_.push_back(c);
        }
        return {};
      case State::DoubleQuoteEscape:
        // Like the shell: the backslash stays unless it escapes one of " \ ` $ or a newline.
        state_ = State::DoubleQuote;
        if (needs_escape_in_quotes(c)) {
          value_.push_back(c);
        } else if (c != '\n') {
          value_.push_back('\\');
          value_.push_back(c);
        }
        return {};
      case State::Comment:
        if (c == '\\') {
          state_ = State::CommentEscape;
        } else if (is_newline(c)) {
          state_ = State::PreKey;
        }
        return {};
      case State::CommentEscape:
        // systemd up to v253 continues such a comment onto the next line, v254 and later do
        // not: refuse rather than read the next line one way or the other.
        if (is_newline(c)) {
          return make_error("line {}: comment ends with a backslash (systemd versions disagree whether the next "
                            "line is part of it)",
                            line_);
        }
        state_ = State::Comment;
        return {};
    }
    return {};
  }

  Status push(bool chomp) {
    if (chomp && value_trailing_space_) value_.resize(*value_trailing_space_);
    if (key_trailing_space_) key_.resize(*key_trailing_space_);
    state_ = State::PreKey;
    if (!is_valid_name(key_)) {
      if (key_.starts_with("export") && key_.size() > 6 && is_space(key_[6])) {
        return make_error("line {}: \"{}\": `export` is shell syntax; an environment file has plain NAME=value lines",
                          key_line_, shown(key_));
      }
      return make_error("line {}: invalid variable name \"{}\"", key_line_, shown(key_));
    }
    if (!is_valid_utf8(value_)) return make_error("line {}: value of {} is not valid UTF-8", key_line_, key_);
    auto same = std::find_if(vars_.begin(), vars_.end(), [&](const auto& kv) { return kv.first == key_; });
    if (same != vars_.end()) {
      same->second = std::move(value_);
    } else {
      vars_.emplace_back(std::move(key_), std::move(value_));
    }
    key_.clear();
    value_.clear();
    return {};
  }

  Result<EnvVars> finish() {
    switch (state_) {
      case State::PreKey:
      case State::Comment:
      case State::CommentEscape:
        break;
      case State::Key:
        return make_error("line {}: \"{}\" has no '=' (expected NAME=value)", key_line_, shown(key_));
      case State::SingleQuote:
        return make_error("line {}: unterminated single quote", quote_line_);
      case State::DoubleQuote:
      case State::DoubleQuoteEscape:
        return make_error("line {}: unterminated double quote", quote_line_);
      case State::PreValue:
      case State::ValueEscape:
        PG_TRY(push(false));
        break;
      case State::Value:
        PG_TRY(push(true));
        break;
    }
    return std::move(vars_);
  }

  State state_ = State::PreKey;
  size_t line_ = 1;
  size_t key_line_ = 1;
  size_t quote_line_ = 1;
  std::string key_;
  std::string value_;
  std::optional<size_t> key_trailing_space_;    // where trailing blanks of the key start
  std::optional<size_t> value_trailing_space_;  // same for an unquoted value
  EnvVars vars_;
};

}  // namespace

std::string render_env_file(const EnvVars& vars) {
  std::string out =
      "# punchgate service settings, written by `punchgate up` (the previous file is kept as .bak).\n"
      "# systemd EnvironmentFile syntax: NAME=\"value\", where \\ escapes \" \\ $ and ` inside the quotes.\n";
  for (const auto& [k, v] : vars) {
    out += k;
    out += "=\"";
    for (char c : v) {
      if (needs_escape_in_quotes(c)) out.push_back('\\');
      out.push_back(c);
    }
    out += "\"\n";
  }
  return out;
}

Result<EnvVars> parse_env_file(std::string_view text) { return Parser().run(text); }

Status check_env_vars(const EnvVars& vars) {
  for (size_t i = 0; i < vars.size(); ++i) {
    const auto& [k, v] = vars[i];
    if (!is_valid_name(k)) return make_error("invalid environment variable name \"{}\"", shown(k));
    for (size_t j = 0; j < i; ++j) {
      if (vars[j].first == k) return make_error("environment variable {} given twice", k);
    }
    for (char c : v) {
      auto u = static_cast<uint8_t>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return make_error("value of {} contains the control character \\x{:02x} (\"{}\")", k, u, shown(v));
      }
    }
    if (!is_valid_utf8(v)) return make_error("value of {} is not valid UTF-8 (\"{}\")", k, shown(v));
  }
  return {};
}

Status write_env_file(const std::filesystem::path& path, const EnvVars& vars) {
  PG_TRY(check_env_vars(vars));
  return write_file_atomic(path, render_env_file(vars), AtomicWriteOptions{0600, 0700, true});
}

Result<EnvVars> read_env_file(const std::filesystem::path& path) {
  auto text = read_file_bounded(path, kMaxEnvFileSize);
  if (!text) return text.error();
  auto vars = parse_env_file(*text);
  if (!vars) return make_error("{}: {}", path.string(), vars.error().message);
  return vars;
}

}  // namespace punchgate
