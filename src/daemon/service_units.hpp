// Service definitions generated for `punchgate up`: a systemd --user unit and a launchd agent.
// deploy/ holds the checked-in templates these follow.
#pragma once

#include "daemon/service_paths.hpp"

#include <filesystem>
#include <string>

namespace punchgate {

struct ServiceUnitParams {
  std::filesystem::path binary;  // absolute path of the punchgate executable
  ServicePaths paths;
};

// ~/.config/systemd/user/punchgate.service: EnvironmentFile=<env file>, Restart=on-failure.
// Any path works: a binary path systemd refuses as an executable name (quotes, backslash, `$`,
// control bytes) runs through `/bin/sh -c 'exec "$0" "$@"'`, and an env file path that
// EnvironmentFile= cannot hold (non-ASCII, control bytes, trailing blank) goes as --env-file.
std::string render_systemd_user_unit(const ServiceUnitParams& p);
// ~/Library/LaunchAgents/com.punchgate.daemon.plist: runs `<binary> --env-file <env file>`,
// KeepAlive on failure, logs to paths.log_file (its directory must exist: launchd does not
// create it). Every value is XML-escaped.
std::string render_launchd_plist(const ServiceUnitParams& p);

}  // namespace punchgate
