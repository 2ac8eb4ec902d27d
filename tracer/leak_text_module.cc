// libmemtide_leak_text.so: the leak text at exit (leak_text_module.h), loaded by the tracer module only when
// a traced program ends with live blocks and MEMTIDE_LEAK_TOP asks for the text.
#include "leak_text_module.h"

#include <exception>
#include <string>

#include "leak_summary.h"
#include "nlohmann/json.hpp"

namespace memtide {
namespace {

// As LeakSanitizer prints one: the trace symbolized in process and rendered like `memtide report` (memtide
// run sets MEMTIDE_LEAK_TOP=0 and renders it itself). If that fails, one line with the totals and the reason.
void EmitLeakText(const nlohmann::json& trace, const std::string& trace_path, const std::string& suppressions,
                  int top_stacks, void (*log_line)(const char*), void (*write_text)(const char*, size_t)) {
  const nlohmann::json& totals = trace.at("totals");
  const int64_t live_blocks = totals.at("live_blocks").get<int64_t>();
  if (live_blocks <= 0) return;
  absl::StatusOr<std::string> text = LeakSummaryText(trace, suppressions, top_stacks);
  if (text.ok() && write_text != nullptr) {
    if (text->empty()) return;  // everything left is the C runtime's own or suppressed
    write_text(text->data(), text->size());
    if (!trace_path.empty()) log_line(("the whole trace is in " + trace_path).c_str());
    return;
  }
  const std::string line =
      LeakTotalsLine(totals.at("live_bytes").get<int64_t>(), live_blocks, trace.at("sites").size(),
                     trace.at("mode") == "sample", trace_path, text.ok() ? "" : std::string(text.status().message()));
  log_line(line.c_str());
}

}  // namespace
}  // namespace memtide

extern "C" __attribute__((visibility("default"))) void memtide_leak_text(
    const char* trace, size_t trace_length, const char* trace_path, const char* suppressions, int32_t top_stacks,
    void (*log_line)(const char*), void (*write_text)(const char*, size_t)) noexcept {
  if (log_line == nullptr) return;
  try {
    // Deliberately never destroyed: the process is ending (see the tracer's AtExit).
    const nlohmann::json& document = *new nlohmann::json(nlohmann::json::parse(trace, trace + trace_length));
    memtide::EmitLeakText(document, trace_path != nullptr ? trace_path : "",
                          suppressions != nullptr ? suppressions : "", top_stacks, log_line, write_text);
  } catch (const std::exception& error) {
    log_line((std::string("no leak report at exit: ") + error.what()).c_str());
  } catch (...) {
    log_line("no leak report at exit");
  }
}

// The entry has the type the tracer module calls it with.
[[maybe_unused]] static constexpr MemtideLeakTextFunction kEntryHasItsType = memtide_leak_text;
