// The report model: a trace file (tracer/trace_file.h) or a `memtide run` report read, validated and
// symbolized into sites with named stacks, and the leaks / live sites / peak sites grouped by stack that
// the renderers, `diff` and `check` work from. Runs in the CLI, and in a traced program at exit
// (LeakSummaryText). Never throws: every problem of a file is one line in an absl::Status.
#ifndef MEMTIDE_TRACER_TRACE_REPORT_H_
#define MEMTIDE_TRACER_TRACE_REPORT_H_

#include <stdint.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "symbolizer.h"

namespace memtide {

// `memtide run --report` files: 1 (counters only) and 2 (with the trace's leaks and peak sites).
inline constexpr int kRunReportVersion = 2;
inline constexpr int kOldestRunReportVersion = 1;
inline constexpr const char* kRunReportVersionKey = "memtide_report_version";

// Trace files and reports bigger than this are refused before parsing (the JSON tree takes ~10x the file).
inline constexpr int64_t kMaxTraceFileBytes = 512LL << 20;
// Frames per recorded stack accepted from a file (the tracer records at most 64).
inline constexpr size_t kMaxFramesPerStack = 1024;

enum class TraceKind { kExit, kSnapshot };
const char* TraceKindName(TraceKind kind);

// The trace's own header and totals ("trace" object of the reports).
struct TraceInfo {
  TraceKind kind = TraceKind::kExit;
  int64_t pid = 0;
  std::vector<std::string> command;
  double time_s = 0;
  std::optional<int64_t> exit_code;
  std::string mode = "full";  // full | sample
  int64_t sample_mean_bytes = 0;
  std::string byte_unit = "requested";
  bool complete = true;
  int64_t live_bytes = 0;
  int64_t live_blocks = 0;
  int64_t peak_bytes = 0;
  int64_t allocations = 0;
  int64_t frees = 0;
  int64_t allocated_bytes = 0;
};

using Stack = std::vector<Frame>;  // innermost first

struct Site {
  Stack stack;  // empty when the report was read with all_site_stacks off: SiteFrames names it then
  int64_t live_bytes = 0;
  int64_t live_blocks = 0;
  int64_t peak_bytes = 0;
  int64_t peak_blocks = 0;
  int64_t allocated_bytes = 0;
  int64_t allocations = 0;
  std::vector<int64_t> sizes;
  // Exit traces, of live_*: the C runtime's own blocks, what its exit cleanup freed in the exit-cleanup probe
  // (read from the file when TraceReport::exit_cleanup_probed), else set by ClassifyLeaks from the stack;
  // and what ClassifyLeaks counts as leaked (neither the runtime's nor suppressed).
  int64_t runtime_bytes = 0;
  int64_t runtime_blocks = 0;
  int64_t leaked_bytes = 0;
  int64_t leaked_blocks = 0;
  // The stack's frames as ids of their grouping keys (StackKey's parts), ranked in TraceReport::frame_key_ranks.
  // Set by ParseRawTrace for the sites with live or peak figures (all that its groupings and ClassifyLeaks
  // count), so that grouping compares ids instead of building a StackKey per site (cc1plus leaves 22,000
  // live stacks of some 25 frames); empty elsewhere.
  std::vector<uint32_t> frame_keys;
  // For the same sites (and every site with RawTraceOptions::all_site_frames): each raw frame of the stack
  // as an index in TraceReport::frame_names, so that SiteFrames reads the stack without a copy per site.
  std::vector<uint32_t> frame_names;
};

// One stack and what it holds (leaked, live, or held at the peak, depending on the list).
struct StackTotal {
  Stack stack;
  int64_t bytes = 0;
  int64_t count = 0;
  std::vector<int64_t> sizes;  // distinct requested sizes seen, ascending, at most kMaxSizesShown
  // A raw trace's grouped entry: the index in TraceReport::sites of its first site, whose frames are the
  // entry's stack even where `stack` was left unnamed (EntryFrames); SIZE_MAX elsewhere.
  size_t site = SIZE_MAX;
};
inline constexpr size_t kMaxSizesShown = 4;

struct SuppressionHit {
  std::string pattern;
  int64_t bytes = 0;
  int64_t count = 0;
};

struct TraceReport {
  std::string path;  // where it was read from, for messages
  // False for a report of a run without tracing (its counters only, in run_report).
  bool has_trace = false;
  TraceInfo trace;
  // A raw trace: every site, symbolized, in file order. A report: empty (it keeps only the lists below).
  bool has_sites = false;
  std::vector<Site> sites;
  // Each frame key id's rank among the key texts: ids compared by rank order stacks as StackKey does.
  std::vector<uint32_t> frame_key_ranks;
  // Each distinct raw frame of a raw trace, named: its inlined frames first (Site::frame_names).
  std::vector<Stack> frame_names;
  // An exit trace whose sites carry the figures of the exit-cleanup probe (trace_file.h, "freed_at_exit"):
  // the C runtime's blocks are then those, not the ones its stacks suggest.
  bool exit_cleanup_probed = false;
  // Exit traces: classified by ClassifyLeaks (leak_suppressions.h), or as the report stored them.
  bool has_leaks = false;
  std::vector<StackTotal> leaks;          // the program's, by bytes
  std::vector<StackTotal> runtime_leaks;  // the C runtime's own blocks
  int64_t suppressed_bytes = 0;
  int64_t suppressed_count = 0;
  std::vector<SuppressionHit> suppression_hits;
  int64_t leaked_bytes = 0;  // sum of `leaks` (not runtime, not suppressed)
  int64_t leaked_blocks = 0;
  // Snapshots: what is live, by stack. Both kinds: what was held at the traced peak, by stack.
  std::vector<StackTotal> live_sites;
  std::vector<StackTotal> peak_sites;
  // A `memtide run` report as read (heap, gpu, rss… for budgets); null for a raw trace.
  nlohmann::json run_report;
};

// Reads a JSON file of at most kMaxTraceFileBytes. Errors name the file: missing, unreadable, not JSON
// (with the parser's position).
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);
// The JSON document in `text`, refused in one line naming `name` when it is not JSON or nests deeper than the
// parser's recursion can safely go (a file written by another process may be hostile).
absl::StatusOr<nlohmann::json> ParseJsonText(const std::string& text, const std::string& name);

// How much of a raw trace to keep named. A full trace of a Python program holds hundreds of thousands of
// stacks of some 50 frames; naming every one of them as its own list of frames took 13 GB.
struct RawTraceOptions {
  // Keep only the sites with live blocks: the leak check at exit needs no more.
  bool live_sites_only = false;
  // Copy every kept site's stack into Site::stack. False: no site keeps a copy; the stacks of the sites with
  // live or peak figures (all that ClassifyLeaks and the grouped lists read) are read through SiteFrames.
  bool all_site_stacks = true;
  // With all_site_stacks off: still name every kept site's frames, read through SiteFrames without a copy
  // per site (the sites with live or peak figures are named anyway). What collapsed stacks weighted by the
  // sites' own figures need: copying 600,000 stacks of 50 frames took 10 GB.
  bool all_site_frames = false;
  // In the grouped lists (live_sites, peak_sites), name the stacks of the first this many entries (by bytes);
  // the entries after keep their figures and an empty stack.
  size_t named_entries = SIZE_MAX;
  // Called with each kept site once its frames are named; false ends the parse there: the report then holds
  // the sites so far and no grouped lists. For a question the first sites may answer.
  std::function<bool(const TraceReport&, const Site&)> keep_going;
};

// Validates a raw trace (memtide_trace_version 1 or 2) and symbolizes the stacks of its sites with `symbolizer`.
// Grouped lists (live_sites, peak_sites) are filled; leaks are left to ClassifyLeaks. `origin` names the file
// in errors. A null `symbolizer` only validates: frames stay unnamed (module+offset).
absl::StatusOr<TraceReport> ParseRawTrace(const nlohmann::json& json, const std::string& origin, Symbolizer* symbolizer,
                                          const RawTraceOptions& options = {});

// Reads a `memtide run` report (version 1 or 2): the counters stay in run_report, a version-2 report's
// trace, leaks, runtime leaks, suppressed totals and peak sites (and a snapshot's sites) are parsed back.
absl::StatusOr<TraceReport> ParseRunReport(const nlohmann::json& json, const std::string& origin);

// Either of the two, chosen by the version key; any other document or version is refused with one line
// naming the file, the version found and the ones supported.
absl::StatusOr<TraceReport> ParseTraceOrReport(const nlohmann::json& json, const std::string& origin,
                                               Symbolizer* symbolizer, const RawTraceOptions& options = {});

// Sums sites into one entry per symbolized stack (frames equal by function, file, line, module, and by
// address where the function is unknown), dropping zero entries; sorted by bytes, then count, descending.
// `bytes` and `count` pick the figures (e.g. &Site::live_bytes, &Site::live_blocks). Given the raw trace's
// report the sites belong to, groups on their frame_keys (same groups and order) and names one stack per group.
// Only the first `named_entries` entries carry their stack; the others keep their figures and an empty one.
std::vector<StackTotal> GroupSites(const std::vector<const Site*>& sites, int64_t Site::*bytes, int64_t Site::*count,
                                   const TraceReport* from = nullptr, size_t named_entries = SIZE_MAX);

// A site's stack, frame by frame: its own `stack`, or (read with all_site_stacks off) the report's frame names.
std::vector<const Frame*> SiteFrames(const TraceReport& report, const Site& site);
// The frames of `stack` as SiteFrames gives them, for code that reads both kinds.
std::vector<const Frame*> FramesOf(const Stack& stack);
// An entry's frames: its named stack, else its first site's (StackTotal::site) without a copy.
std::vector<const Frame*> EntryFrames(const TraceReport& report, const StackTotal& total);
Stack SiteStack(const TraceReport& report, const Site& site);
// Merges entries with equal stacks (a report's lists after suppressions or between files) and sorts as above.
std::vector<StackTotal> MergeStackTotals(std::vector<StackTotal> entries);

// The identity of a stack for grouping and diff: per frame function + file + line, or module+offset when the
// function is unknown. Not meant for display.
std::string StackKey(const Stack& stack);

// Text from a file or from debug info made safe for a terminal: C0/C1 controls, DEL and invalid UTF-8 bytes
// become '?'.
std::string SafeText(const std::string& text);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_TRACE_REPORT_H_
