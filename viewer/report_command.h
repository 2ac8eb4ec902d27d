// `memtide report FILE [--format text|json|collapsed] [--top N] [--suppressions FILE] [--weight W]`: a trace
// file (tracer/trace_file.h) or a `memtide run` report, symbolized and classified, printed as a leak report
// (exit traces) or live sites (snapshots) with the peak sites, as JSON, or as folded stacks. Also the
// loading step `diff`, `check` and `run --baseline` share. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_REPORT_COMMAND_H_
#define MEMTIDE_VIEWER_REPORT_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "leak_suppressions.h"
#include "report_render.h"
#include "trace_report.h"

namespace memtide {

struct ReportOptions {
  std::string path;
  std::string format = "text";  // text | json | collapsed
  int top = kDefaultTopStacks;  // 0: all
  std::string suppressions;
  std::string weight;  // collapsed: leaked | live | peak | allocated (default: leaked at exit, live in a snapshot)
};

CLI::App* AddReportCommand(CLI::App* app, ReportOptions* options);
absl::Status ReportCommand(const ReportOptions& options);

// Reads, validates and symbolizes a trace file or a report, and classifies an exit trace's leaks with
// `suppressions` (a report's stored leaks are filtered by them).
// `raw` says how much of a raw trace to name (the CLI's commands name what they show, see RawTraceOptions);
// the leak list names as many entries as the grouped lists.
absl::StatusOr<TraceReport> OpenTraceOrReport(const std::string& path, const LeakSuppressions& suppressions,
                                              const RawTraceOptions& raw);
// What a command that shows the grouped lists, at most `top` entries each (0: all), needs of a raw trace.
RawTraceOptions ListsOnly(int top);
// An empty path: no suppressions.
absl::StatusOr<LeakSuppressions> LoadSuppressions(const std::string& path);

// `memtide report --format json`: a version-2 report of the trace (so diff and check read it back), or the
// run report with its lists replaced; like a run's report, at most kRunReportMaxStacks entries per list.
nlohmann::json ReportJson(const TraceReport& report);

// Writes `contents` to `path` through a temporary file and a rename; errors name `what` (e.g. "--report").
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents, const std::string& what);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_REPORT_COMMAND_H_
