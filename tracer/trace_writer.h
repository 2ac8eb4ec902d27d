// The trace file writer: turns what the tracer collected (modules, stacks, per-site counters, totals) into the
// JSON of trace_file.h and puts it on disk. Runs in the tracer module off the hot path: at exit on the exiting
// thread, for snapshots on the monitor thread or the caller of memtide_snapshot(). Allocates freely (the
// caller holds the preload's reentrancy guard, so none of it is traced) and holds none of the tracer's locks.
#ifndef MEMTIDE_TRACER_TRACE_WRITER_H_
#define MEMTIDE_TRACER_TRACE_WRITER_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <utility>
#include <vector>

#include "module_map.h"
#include "nlohmann/json.hpp"
#include "site_stats.h"

namespace memtide::internal {

struct TraceStack {
  uint32_t id = 0;
  std::vector<std::pair<int32_t, uint64_t>> frames;  // (module index, offset), or (-1, absolute address)
};

struct TraceTotals {
  double live_bytes = 0;
  double live_blocks = 0;
  double peak_bytes = 0;
  double allocations = 0;
  double frees = 0;
  double allocated_bytes = 0;
};

struct TraceContents {
  bool exit = true;  // kind "exit", else "snapshot"
  int64_t pid = 0;
  std::vector<std::string> command;
  double time_s = 0;
  bool has_exit_code = false;
  int32_t exit_code = 0;
  bool sample_mode = false;
  int64_t sample_mean_bytes = 0;  // written as 0 in full mode
  bool complete = true;
  TraceTotals totals;
  std::vector<ModuleInfo> modules;
  std::vector<TraceStack> stacks;
  std::vector<SiteCounters> sites;  // sites that round to zero are skipped when written
};

// True when every figure of the site rounds to zero: such sites are not written (trace_file.h), nor their
// stacks.
bool SiteRoundsToZero(const SiteCounters& site);

// The trace_file.h document. Estimates are rounded to the nearest integer; sites are written in the order
// given, stacks too.
nlohmann::json BuildTraceJson(const TraceContents& contents);

// JSON text; invalid UTF-8 (command-line arguments, paths) is replaced rather than thrown on.
std::string SerializeTrace(const nlohmann::json& trace);

// The process's command line from /proc/self/cmdline (empty if unreadable).
std::vector<std::string> ReadCommandLine();

// `pattern` with every "%p" replaced by pid.
std::string ExpandPid(const std::string& pattern, int64_t pid);

// Writes `text` to `path` through a temporary file in the same folder and rename(2), so a reader never sees a
// half-written trace. Mode 0644. Returns 0 or an errno value.
int WriteFileReplacing(const std::string& path, const std::string& text);

// Writes `text` to `path`: create_new uses O_EXCL (fails with EEXIST if it exists), otherwise O_TRUNC.
// Always O_NOFOLLOW|O_CLOEXEC, mode 0600. Returns 0 or an errno value.
int WriteFileDirect(const std::string& path, const std::string& text, bool create_new);

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_TRACE_WRITER_H_
