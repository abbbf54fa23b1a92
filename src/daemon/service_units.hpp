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
std::string render_systemd_user_unit(const ServiceUnitParams& p);
// ~/Library/LaunchAgents/com.punchgate.daemon.plist: runs `<binary> --env-file <env file>`,
// KeepAlive on failure, logs to the state dir.
std::string render_launchd_plist(const ServiceUnitParams& p);

}  // namespace punchgate
