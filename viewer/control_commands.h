// `memtide trim PID` and `memtide reset-peak PID`: one request through the process's control mailbox
// (control_client.h), answered by its monitor thread. trim prints the RSS before and after. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_CONTROL_COMMANDS_H_
#define MEMTIDE_VIEWER_CONTROL_COMMANDS_H_

#include <stdint.h>
#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace memtide {

struct ControlOptions {
  pid_t pid = 0;
  std::string directory;
  int64_t timeout_ms = 5000;
  bool json = false;
};

absl::Status TrimCommand(const ControlOptions& options);
absl::Status ResetPeakCommand(const ControlOptions& options);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_CONTROL_COMMANDS_H_
