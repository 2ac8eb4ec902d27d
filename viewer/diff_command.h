// `memtide diff A B [--json] [--top N] [--peak] [--suppressions FILE]`: growth per stack between two trace
// files or reports (two snapshots, two exit traces, two run reports), like tracemalloc's compare_to.
// Runs in the CLI.
#ifndef MEMTIDE_VIEWER_DIFF_COMMAND_H_
#define MEMTIDE_VIEWER_DIFF_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "report_render.h"

namespace memtide {

struct DiffOptions {
  std::string a, b;
  bool json = false;
  int top = kDefaultTopStacks;  // 0: all
  bool peak = false;            // compare what was held at the peak instead of what was live / leaked
  std::string suppressions;
};

CLI::App* AddDiffCommand(CLI::App* app, DiffOptions* options);
absl::Status DiffCommand(const DiffOptions& options);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_DIFF_COMMAND_H_
