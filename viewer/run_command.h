// `memtide run [options] -- program args…`: runs a program under libmemtide.so, waits, reads its final
// segment (and, when tracing, its trace file: leaks and peak sites, symbolized), prints the summary, writes
// the JSON report and applies the budgets. Exit code: the program's (128+signal when killed), or
// kBudgetExceededExitCode when it succeeded but broke a budget.
#ifndef MEMTIDE_VIEWER_RUN_COMMAND_H_
#define MEMTIDE_VIEWER_RUN_COMMAND_H_

#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "budget_check.h"
#include "report_render.h"

namespace memtide {

inline constexpr int kBudgetExceededExitCode = 3;

struct RunOptions {
  std::vector<std::string> command;
  std::string report_path;
  // --max-peak, --max-gpu-peak, --max-leak, --max-increase (budget_check.h).
  Budgets budgets;
  std::string baseline_path;    // an earlier report (or trace) to compare with; empty: none
  std::string summary_md_path;  // Markdown summary for a CI job page; empty: none
  // Tracing in the child (the tracer module): empty (off), "sample" or "full". --leaks is "full".
  std::string trace_mode;
  std::string suppressions_path;  // LeakSanitizer-format; needs tracing
  int top = kDefaultTopStacks;    // stacks printed per section (0: all)
  std::string directory;  // empty: MEMTIDE_DIR or its default
  bool keep_segment = false;
  bool quiet = false;
  // glibc (the default: nothing preloaded), mimalloc, jemalloc or tcmalloc: preloaded after libmemtide.so, so
  // memtide counts on top of it and trims through its own API.
  std::string allocator = "glibc";
};

// The report's memtide_report_version: 2 adds "trace_status" and, when tracing, the trace's lists.
// Lists in the report are cut at this many stacks (the totals stay whole; "<list>_not_listed" says what was cut).
inline constexpr int kRunReportMaxStacks = 1000;

// The allocator libraries `--allocator` accepts, by name.
inline constexpr const char* kAllocatorNames[] = {"glibc", "mimalloc", "jemalloc", "tcmalloc"};

// The shared library of an allocator (empty for glibc), or an error naming the Debian package to install.
absl::StatusOr<std::string> LocateAllocator(const std::string& name);

absl::StatusOr<int> RunCommand(const RunOptions& options);

// Where libmemtide.so sits next to this executable: <bin>/../lib, as in the build tree and after install.
absl::StatusOr<std::string> LocatePreload();

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_RUN_COMMAND_H_
