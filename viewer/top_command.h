// `memtide top`: a refreshing table of every process with a segment in the directories (MEMTIDE_DIR or
// /dev/shm, or each --dir), sortable; `--once` prints one table and exits (for scripts), `--json` prints
// JSON (one document with --once, else one line per refresh). Files it refuses are named on standard error
// and the others are still shown. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_TOP_COMMAND_H_
#define MEMTIDE_VIEWER_TOP_COMMAND_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "flag_values.h"

namespace memtide {

struct TopOptions {
  std::vector<std::string> directories;
  SortKey sort = SortKey::kRss;
  int64_t interval_ms = 1000;
  bool once = false;
  bool json = false;
  int64_t count = 0;  // refreshes before exiting; 0: until interrupted
};

absl::Status TopCommand(const TopOptions& options);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_TOP_COMMAND_H_
