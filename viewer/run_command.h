// `memtide run [options] -- program args…`: runs a program under libmemtide.so, waits, reads its final
// segment, prints the summary, writes the JSON report and applies the budgets. Exit code: the program's
// (128+signal when killed), or kBudgetExceededExitCode when it succeeded but broke a budget.
#ifndef MEMTIDE_VIEWER_RUN_COMMAND_H_
#define MEMTIDE_VIEWER_RUN_COMMAND_H_

#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace memtide {

inline constexpr int kBudgetExceededExitCode = 3;

struct RunOptions {
  std::vector<std::string> command;
  std::string report_path;
  std::optional<int64_t> max_peak_bytes;
  std::string directory;  // empty: MEMTIDE_DIR or its default
  bool keep_segment = false;
  bool quiet = false;
};

absl::StatusOr<int> RunCommand(const RunOptions& options);

// Where libmemtide.so sits next to this executable: <bin>/../lib, as in the build tree and after install.
absl::StatusOr<std::string> LocatePreload();

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_RUN_COMMAND_H_
