// `memtide gc`: removes the segments of processes that are gone (exited with the segment kept, killed, OOM
// killed), and the temporary files of segment creations that a process did not finish. Only files you own:
// even root leaves other users' segments alone. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_GC_COMMAND_H_
#define MEMTIDE_VIEWER_GC_COMMAND_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace memtide {

struct GcOptions {
  std::vector<std::string> directories;
  bool dry_run = false;
  // A segment still marked running whose pid is not alive here may belong to a process in another pid
  // namespace (a container sharing the directory): it is stale only once it has not been published for this
  // long (the default publish interval is 100 ms).
  int64_t grace_ms = 5000;
};

absl::Status GcCommand(const GcOptions& options);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_GC_COMMAND_H_
