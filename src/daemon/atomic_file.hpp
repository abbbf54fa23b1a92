// Small file helpers for the service-mode files: bounded reads, directories
// created with a given mode, and atomic replacement (temp file + fsync + rename).
#pragma once

#include "punchgate/core/result.hpp"
#include "punchgate/core/unique_fd.hpp"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace punchgate {


// mkdir -p; directories it creates get `mode`, existing ones are left as they are.
Status make_dirs(const std::filesystem::path& dir, mode_t mode);

// The whole file, failing when it is larger than `max_size`. Error text names the path; a
// missing file fails with `*missing` set when `missing` is given.
Result<std::string> read_file_bounded(const std::filesystem::path& path, size_t max_size, bool* missing = nullptr);

struct AtomicWriteOptions {
  mode_t mode = 0600;        // of the new file
  mode_t dir_mode = 0700;    // of parent directories created on the way
  bool keep_backup = false;  // copy the previous file (if any) to <path>.bak first
};

// Writes `content` to a temp file next to `path`, fsyncs it, renames it over `path` and fsyncs
// the directory, so readers see the old or the new file, never a mix.
Status write_file_atomic(const std::filesystem::path& path, std::string_view content, const AtomicWriteOptions& opt);

}  // namespace punchgate
