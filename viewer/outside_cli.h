// Registers the outside commands (top, gc, trim, reset-peak, doctor, monitor, export) on the CLI11 app and
// runs the one that was parsed, so main.cc stays a list of command groups. Every flag value is validated by
// flag_values.h during parsing, before anything runs. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_OUTSIDE_CLI_H_
#define MEMTIDE_VIEWER_OUTSIDE_CLI_H_

#include <memory>
#include <optional>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace memtide {

class OutsideCommands {
 public:
  explicit OutsideCommands(CLI::App* app);
  ~OutsideCommands();
  // The status of the outside command that was parsed, or nullopt when another command was.
  std::optional<absl::Status> RunParsed();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_OUTSIDE_CLI_H_
