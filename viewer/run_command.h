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
  // Fails the run like max_peak_bytes if any GPU's device-memory peak exceeds it.
  std::optional<int64_t> max_gpu_peak_bytes;
  std::string directory;  // empty: MEMTIDE_DIR or its default
  bool keep_segment = false;
  bool quiet = false;
  // glibc (the default: nothing preloaded), mimalloc, jemalloc or tcmalloc: preloaded after libmemtide.so, so
  // memtide counts on top of it and trims through its own API.
  std::string allocator = "glibc";
};

// The allocator libraries `--allocator` accepts, by name.
inline constexpr const char* kAllocatorNames[] = {"glibc", "mimalloc", "jemalloc", "tcmalloc"};

// The shared library of an allocator (empty for glibc), or an error naming the Debian package to install.
absl::StatusOr<std::string> LocateAllocator(const std::string& name);

absl::StatusOr<int> RunCommand(const RunOptions& options);

// Where libmemtide.so sits next to this executable: <bin>/../lib, as in the build tree and after install.
absl::StatusOr<std::string> LocatePreload();

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_RUN_COMMAND_H_
