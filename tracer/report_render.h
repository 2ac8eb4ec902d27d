// The report model (trace_report.h) as text (a leak report like LeakSanitizer's and valgrind's, then the
// peak sites), as JSON (the lists `memtide run` embeds in its report, and `memtide report --format json`),
// and as Brendan Gregg's folded stacks for flame graphs. Pure functions of the model. Runs in the CLI, and
// in a traced program at exit (LeakSummaryText).
#ifndef MEMTIDE_TRACER_REPORT_RENDER_H_
#define MEMTIDE_TRACER_REPORT_RENDER_H_

#include <stdint.h>

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "trace_report.h"

namespace memtide {

inline constexpr int kDefaultTopStacks = 10;

// "1 block" / "10 blocks"
std::string Blocks(int64_t count);

// "#3 function file:line (module)"; "#3 function (module+0x1234)" without a line; "#3 ?? (module+0x1234)".
std::string FrameText(const Frame& frame, size_t index);
// The frame a reader looks at first: the innermost one outside the C runtime and allocator wrappers
// (libc, libstdc++, the loader), else the innermost. Null for an empty stack.
const Frame* TopProgramFrame(const Stack& stack);

struct TextOptions {
  int top = kDefaultTopStacks;  // stacks per section; 0: all
  bool peak_sites = true;       // the "At the peak" section
};

// `memtide report --format text`: a header, the leaks (exit) or live sites (snapshot), the totals, then the
// peak sites.
std::string RenderText(const TraceReport& report, const TextOptions& options);
// The leak part alone, LeakSanitizer-like: one block per stack ("Leak of 1,000 bytes in 10 blocks (sizes
// 100)" and its frames), then "SUMMARY: …" and what was not counted. Lines end in '\n'; blank lines separate
// the blocks.
std::string RenderLeakText(const TraceReport& report, int top);
// "At the peak (12.0 MiB traced):" and the top stacks held there.
std::string RenderPeakText(const TraceReport& report, int top);

// The report's lists as JSON: "trace", then for an exit trace "leaks", "runtime_leaks", "suppressed",
// "leaked_bytes", "leaked_blocks", for a snapshot "sites", and "peak_sites". `max_stacks` bounds each list
// (0: all); a cut list gets "<list>_not_listed": {"stacks", "bytes", "count"} and the totals stay whole.
nlohmann::json RenderJson(const TraceReport& report, int max_stacks);
nlohmann::json StackJson(const Stack& stack);

// Folded stacks ("outer;…;inner bytes", one line per distinct stack, sorted) for flamegraph.pl, speedscope.
enum class Weight {
  kDefault,    // exit: leaked bytes; snapshot: live bytes
  kLeaked,     // the program's leaks (exit traces)
  kLive,       // every block live at the end (exit) or at the snapshot, runtime and suppressed included
  kPeak,       // held at the traced peak
  kAllocated,  // everything ever allocated
};
absl::StatusOr<Weight> ParseWeight(absl::string_view text);
// Writes the lines in chunks (tracer/folded_stacks.h): a big trace's text need not fit in memory at once. An
// error (a weight the trace cannot give) comes before anything is written.
absl::Status WriteCollapsed(const TraceReport& report, Weight weight,
                            const std::function<void(std::string_view chunk)>& write);
// The same, as one string.
absl::StatusOr<std::string> RenderCollapsed(const TraceReport& report, Weight weight);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_REPORT_RENDER_H_
