// punchgate: entry point. Parses the command line, sets up logging, runs one subcommand.
#include "cli/commands.hpp"
#include "cli/config.hpp"
#include "punchgate/core/log.hpp"

#include <cstdio>

int main(int argc, char** argv) {
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
    case punchgate::Command::Run:
      break;
  }
  return punchgate::run_node(*cfg);
}
