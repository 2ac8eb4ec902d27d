// The leak report a traced program prints at exit when it runs under plain LD_PRELOAD (no `memtide run`):
// its own raw trace symbolized in process, classified, and rendered as `memtide report --format text`
// renders the leaks. Called by the tracer module at exit, on the exiting thread with the reentrancy guard
// held (what it allocates is neither traced nor counted). Never throws.
#ifndef MEMTIDE_TRACER_LEAK_SUMMARY_H_
#define MEMTIDE_TRACER_LEAK_SUMMARY_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace memtide {

// `raw_trace` is the document the module writes (tracer/trace_file.h, kind "exit"); `suppressions_path` a
// LeakSanitizer-format file or empty; `top_stacks` the stacks shown (0 or less: all). Returns the text,
// lines ending in '\n' (blank lines between stacks), or an empty string when nothing leaked: a program that
// frees everything prints nothing, as under LeakSanitizer. Errors: an unreadable suppressions file, a trace
// that fails validation.
absl::StatusOr<std::string> LeakSummaryText(const nlohmann::json& raw_trace, const std::string& suppressions_path,
                                            int top_stacks);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_LEAK_SUMMARY_H_
