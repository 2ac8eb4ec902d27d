// `memtide diff A B`: what grew and what shrank between two traces or reports, per symbolized stack, in the
// manner of Python's tracemalloc Snapshot.compare_to: for each stack the size and count in B and their
// change from A, sorted by the absolute change in bytes. Pure functions of two models. Runs in the CLI.
#ifndef MEMTIDE_TRACER_TRACE_DIFF_H_
#define MEMTIDE_TRACER_TRACE_DIFF_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "trace_report.h"

namespace memtide {

// What is compared: the memory each file attributes to stacks at its end.
enum class DiffMetric {
  kLive,  // snapshot: live sites; exit trace or report: leaks (after runtime blocks and suppressions)
  kPeak,  // held at the traced peak
};

struct StackDiff {
  Stack stack;
  int64_t size = 0;  // in B
  int64_t size_diff = 0;
  int64_t count = 0;  // in B
  int64_t count_diff = 0;
};

struct TraceDiff {
  std::string a_path, b_path;
  TraceKind a_kind = TraceKind::kExit, b_kind = TraceKind::kExit;
  DiffMetric metric = DiffMetric::kLive;
  int64_t a_bytes = 0, a_count = 0, b_bytes = 0, b_count = 0;
  std::vector<StackDiff> stacks;  // every stack of A or B, by |size_diff|, |count_diff| descending
};

// Errors when a file has no figures for the metric (a report of a run without tracing).
absl::StatusOr<TraceDiff> CompareTraces(const TraceReport& a, const TraceReport& b, DiffMetric metric);

// Text: a header line with the totals, then the top `top` changed stacks (0: all) with their frames;
// unchanged stacks are counted, not listed.
std::string RenderDiffText(const TraceDiff& diff, int top);
// {"a": {"path","kind","bytes","count"}, "b": {…}, "metric", "size_diff", "count_diff",
//  "stacks": [{"size","size_diff","count","count_diff","stack":[frames]}]} (top `top`, 0: all).
nlohmann::json RenderDiffJson(const TraceDiff& diff, int top);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_TRACE_DIFF_H_
