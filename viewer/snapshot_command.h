// `memtide snapshot PID [-o FILE] [--dir DIR] [--timeout DURATION] [--top N]`: asks a traced process (through
// its control mailbox, like `memtide trim`) to write its live allocations by stack to a trace file in its
// segment directory, checks the file, then moves it to FILE, or, without -o, prints it as `memtide report`
// would. The process must run with MEMTIDE_TRACE=sample or full. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_SNAPSHOT_COMMAND_H_
#define MEMTIDE_VIEWER_SNAPSHOT_COMMAND_H_

#include <sys/types.h>

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "report_render.h"

namespace memtide {

struct SnapshotOptions {
  pid_t pid = 0;
  std::string directory;
  std::string output;  // empty: print the text report
  std::string timeout = "30";
  int top = kDefaultTopStacks;
};

CLI::App* AddSnapshotCommand(CLI::App* app, SnapshotOptions* options);
absl::Status SnapshotCommand(const SnapshotOptions& options);

// The name the process answered must be a plain file name in its segment directory: no folder, no "..",
// printable, not empty.
absl::Status ValidateSnapshotName(const std::string& name);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_SNAPSHOT_COMMAND_H_
