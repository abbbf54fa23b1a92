// punchgate: entry point. Parses the command line, sets up logging, runs one subcommand.
#include "cli/commands.hpp"
#include "cli/config.hpp"
#include "punchgate/core/log.hpp"

#include <cstdio>

int main(int argc, char** argv) {
  if (auto st = punchgate::apply_env_file_arg(argc, argv); !st) {
    std::fprintf(stderr, "punchgate: %s\n", st.error().message.c_str());
    return 2;
  }
  int exit_code = 0;
  auto cfg = punchgate::parse_command_line(argc, argv, exit_code);
  if (!cfg) {
    if (!cfg.error().message.empty()) std::fprintf(stderr, "punchgate: %s\n", cfg.error().message.c_str());
    return exit_code;
  }
  punchgate::init_logging();
  switch (cfg->command) {
    case punchgate::Command::Id:
      return punchgate::run_id(*cfg);
    case punchgate::Command::Ping:
      return punchgate::run_ping(*cfg);
    case punchgate::Command::Pipe:
      return punchgate::run_pipe(*cfg);
    case punchgate::Command::Dht:
      return punchgate::run_dht(*cfg);
    case punchgate::Command::Up:
      return punchgate::run_up(*cfg);
    case punchgate::Command::Down:
      return punchgate::run_down(*cfg);
    case punchgate::Command::ShowStatus:
      return punchgate::run_status(*cfg);
    case punchgate::Command::Logs:
      return punchgate::run_logs(*cfg);
    case punchgate::Command::TunnelAdd:
    case punchgate::Command::TunnelRm:
    case punchgate::Command::ExposeAdd:
    case punchgate::Command::ExposeRm:
      return punchgate::run_control_change(*cfg);
    case punchgate::Command::Supervise:
      return punchgate::run_supervise(*cfg);
    case punchgate::Command::ServiceUnit:
      return punchgate::run_service_unit(*cfg);
    case punchgate::Command::Run:
      break;
  }
  return punchgate::run_node(*cfg);
}
