// libFuzzer target: a trace file, snapshot or `memtide run` report with any contents, as `memtide report`,
// `diff` and `check` read it (tracer/trace_report.cc), then every renderer (text, JSON, collapsed stacks, the
// leak text the tracer prints at exit). Anyone can hand memtide such a file (a CI artifact, a report from
// another version): the reader must refuse it with one line or bound it; nothing may crash, hang or throw.
// Symbolization is left out (no symbolizer): it reads ELF files, not this input.
#include <stddef.h>
#include <stdint.h>

#include <string>

#include "leak_suppressions.h"
#include "nlohmann/json.hpp"
#include "report_render.h"
#include "trace_report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json document =
      nlohmann::json::parse(data, data + size, /*cb=*/nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/false);
  if (document.is_discarded()) return 0;
  absl::StatusOr<memtide::TraceReport> report = memtide::ParseTraceOrReport(document, "input", nullptr);
  if (!report.ok()) {
    std::string message(report.status().message());
    if (message.empty() || message.find('\n') != std::string::npos) __builtin_trap();  // one line, always
    return 0;
  }
  memtide::ClassifyLeaks(memtide::LeakSuppressions(), &*report);
  memtide::RenderText(*report, memtide::TextOptions{});
  memtide::RenderLeakText(*report, 10);
  memtide::RenderJson(*report, 5).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (memtide::Weight weight : {memtide::Weight::kDefault, memtide::Weight::kLeaked, memtide::Weight::kLive,
                                 memtide::Weight::kPeak, memtide::Weight::kAllocated}) {
    (void)memtide::RenderCollapsed(*report, weight);
  }
  return 0;
}
