// The trace file writer: turns what the tracer collected (modules, stacks, per-site counters, totals) into the
// JSON of trace_file.h and puts it on disk. Runs in the tracer module off the hot path: at exit on the exiting
// thread, for snapshots on the monitor thread or the caller of memtide_snapshot(). Allocates freely (the
// caller holds the preload's reentrancy guard, so none of it is traced) and holds none of the tracer's locks.
#ifndef MEMTIDE_TRACER_TRACE_WRITER_H_
#define MEMTIDE_TRACER_TRACE_WRITER_H_

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "module_map.h"
#include "site_stats.h"

namespace memtide::internal {

// Copies stack `id` into the buffers (resized to its depth): runtime return addresses, innermost first, and the
// module index each had when the stack was first seen (-1: none). False when there is no such stack. The
// tracer's depot keeps frames in segments shared between stacks, so a stack is copied out when written.
using StackSource =
    std::function<bool(uint32_t id, std::vector<uintptr_t>* addresses, std::vector<int32_t>* modules)>;

// A stack held as arrays, for StacksFromArrays.
struct TraceStack {
  uint32_t id = 0;
  uint32_t depth = 0;
  const uintptr_t* addresses = nullptr;
  const int32_t* modules = nullptr;
};

// A StackSource over stacks held as arrays that outlive it (tests, small callers).
StackSource StacksFromArrays(std::vector<TraceStack> stacks);

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
  StackSource stacks;  // the stacks of `sites`
  std::vector<SiteCounters> sites;  // sites that round to zero are skipped when written
  // Exit traces: the sites' freed_at_exit_* figures come from the exit-cleanup probe (exit_cleanup_probe.h).
  bool exit_cleanup_probed = false;
};

// True when every figure of the site rounds to zero: such sites are not written (trace_file.h), nor their
// stacks.
bool SiteRoundsToZero(const SiteCounters& site);

// Receives a file's text in order, in chunks; returns 0 or an errno value (which stops the writing).
using ChunkSink = std::function<int(std::string_view chunk)>;
// Produces a file's text through the sink it is given; returns 0 or the first error.
using TextSource = std::function<int(const ChunkSink& sink)>;

// Streams the trace_file.h document to `sink` in chunks of about 1 MiB, never holding the whole text: a trace
// of a PyTorch import (600,000 stacks) is tens of MB, and the process writing it may be near its memory limit.
// Estimates are rounded to the nearest integer; sites are written in the order given; a site that rounds to
// zero, or whose stack `contents.stacks` does not know, is left out, and so are the frames and call-tree nodes
// that no written site uses. Returns 0 or the sink's first error.
int WriteTrace(const TraceContents& contents, const ChunkSink& sink);

// The whole document as one string (small traces: tests, the in-process leak report).
std::string TraceText(const TraceContents& contents);

// The process's command line from /proc/self/cmdline (empty if unreadable).
std::vector<std::string> ReadCommandLine();

// `pattern` with every "%p" replaced by pid.
std::string ExpandPid(const std::string& pattern, int64_t pid);

// Writes what `text` produces to `path` through a temporary file in the same folder and rename(2), so a reader
// never sees a half-written trace. Mode 0644. Returns 0 or an errno value (the temporary is then removed).
int WriteFileReplacing(const std::string& path, const TextSource& text);

// Writes what `text` produces to `path`: create_new uses O_EXCL (fails with EEXIST if it exists), otherwise
// O_TRUNC. Always O_NOFOLLOW|O_CLOEXEC, mode 0600. Returns 0 or an errno value.
int WriteFileDirect(const std::string& path, const TextSource& text, bool create_new);

// A TextSource that produces `text`.
TextSource FixedText(std::string text);

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_TRACE_WRITER_H_
