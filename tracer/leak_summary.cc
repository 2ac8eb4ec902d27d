// See leak_summary.h. Runs in a traced program at exit.
#include "leak_summary.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "leak_suppressions.h"
#include "report_render.h"
#include "symbolizer.h"
#include "trace_report.h"

namespace memtide {
namespace {

// Whether every live block is the C runtime's own: as the exit-cleanup probe found (the trace's
// "freed_at_exit"), or without it judged by the symbol table's names alone. The usual end
// of a program that frees what it allocated (stdio buffers, the loader's tables are left), and then the leak
// text is empty without reading any DWARF. Never wrong the other way: a name from the symbol table is the
// real function's, which the full symbolization also gives (after the functions inlined into it), so a block
// the runtime's here is the runtime's there (IsCRuntimeBlockFrames). False when the trace does not parse.
// Stops at the first other block: a program with leaks pays for little more than reading the trace twice.
bool OnlyCRuntimeBlocks(const nlohmann::json& raw_trace, RawTraceOptions options) {
  Symbolizer symbol_names(Symbolizer::Detail::kSymbolNames, Symbolizer::Servers::kNever);
  bool only_runtime = true;
  options.keep_going = [&only_runtime](const TraceReport& report, const Site& site) {
    const bool live = site.live_blocks != 0 || site.live_bytes != 0;
    if (!live) return true;
    // The probe frees no running thread's TLS; ClassifyLeaks keeps that apart too (IsThreadTablesBlockFrames).
    only_runtime = report.exit_cleanup_probed
                       ? (site.runtime_bytes == site.live_bytes && site.runtime_blocks == site.live_blocks) ||
                             IsThreadTablesBlockFrames(SiteFrames(report, site))
                       : IsCRuntimeBlockFrames(SiteFrames(report, site));
    return only_runtime;
  };
  absl::StatusOr<TraceReport> report = ParseRawTrace(raw_trace, "the trace", &symbol_names, options);
  return report.ok() && report->trace.kind == TraceKind::kExit && only_runtime;
}

}  // namespace

absl::StatusOr<std::string> LeakSummaryText(const nlohmann::json& raw_trace, const std::string& suppressions_path,
                                            int top_stacks) {
  // The library's own code returns statuses; what could still throw here is the standard library running
  // out of memory, which must not unwind into the program's exit path.
  try {
    LeakSuppressions suppressions;
    if (!suppressions_path.empty()) {
      absl::StatusOr<LeakSuppressions> loaded = LeakSuppressions::Load(suppressions_path);
      if (!loaded.ok()) return loaded.status();
      suppressions = std::move(*loaded);
    }
    RawTraceOptions live_only;
    live_only.live_sites_only = true;
    live_only.named_entries = 0;       // the leak text shows no peak sites
    live_only.all_site_stacks = false;  // ClassifyLeaks reads them through SiteFrames
    if (OnlyCRuntimeBlocks(raw_trace, live_only)) return std::string();
    Symbolizer symbolizer(Symbolizer::Detail::kFull, Symbolizer::Servers::kNever);
    absl::StatusOr<TraceReport> report = ParseRawTrace(raw_trace, "the trace", &symbolizer, live_only);
    if (!report.ok()) return report.status();
    if (report->trace.kind != TraceKind::kExit) {
      return absl::InvalidArgumentError("the trace was not taken at exit; no leak check");
    }
    ClassifyLeaks(suppressions, &*report, top_stacks > 0 ? static_cast<size_t>(top_stacks) : SIZE_MAX);
    if (report->leaks.empty()) return std::string();
    return RenderLeakText(*report, top_stacks);
  } catch (const std::exception& error) {
    return absl::ResourceExhaustedError(absl::StrCat("leak summary failed: ", error.what()));
  } catch (...) {
    return absl::InternalError("leak summary failed");
  }
}

}  // namespace memtide
