// The contract between the tracer module and libmemtide_leak_text.so, which renders the leak text a traced
// program prints at exit under plain LD_PRELOAD (leak_summary.h). That rendering needs libdw, Abseil's status
// and strings and a JSON reader, which together take most of the time of loading the tracer (about 6 of 9 ms
// here); so the tracer module does not link them, and loads this one at exit only when there are live blocks
// to report. Plain C types across the boundary, like tracer_module.h.
#ifndef MEMTIDE_TRACER_LEAK_TEXT_MODULE_H_
#define MEMTIDE_TRACER_LEAK_TEXT_MODULE_H_

#include <stddef.h>
#include <stdint.h>

#include <string>

#include "byte_format.h"

#define MEMTIDE_LEAK_TEXT_MODULE "libmemtide_leak_text.so"
#define MEMTIDE_LEAK_TEXT_ENTRY "memtide_leak_text"

extern "C" {
// `trace` is the tracer's document of its live sites (trace_file.h, kind "exit"); `trace_path` where the
// whole trace was written ("" for none); `suppressions` a LeakSanitizer-format file ("" for none). Prints the
// text through write_text, or one line through log_line saying what leaked and why there is no text.
// Runs in a throwaway child of the exiting process (leak_text_child.h), or on the exiting thread where no child
// can run, under the preload's guard; never throws.
typedef void (*MemtideLeakTextFunction)(const char* trace, size_t trace_length, const char* trace_path,
                                        const char* suppressions, int32_t top_stacks,
                                        void (*log_line)(const char* line),
                                        void (*write_text)(const char* text, size_t length));
}

namespace memtide {

// The one line printed instead of the leak text when it cannot be made (`reason`, or "" when there is none).
inline std::string LeakTotalsLine(int64_t live_bytes, int64_t live_blocks, size_t stacks, bool sampled,
                                  const std::string& trace_path, const std::string& reason) {
  return std::string(sampled ? "about " : "") + GroupedCount(live_bytes) + " bytes in " + GroupedCount(live_blocks) +
         (live_blocks == 1 ? " block" : " blocks") + " not freed at exit, from " + std::to_string(stacks) +
         (stacks == 1 ? " stack" : " stacks") + (sampled ? " (sampled estimate)" : "") +
         (trace_path.empty() ? std::string("; no trace file") : "; trace in " + trace_path) +
         (reason.empty() ? std::string() : "; no leak report: " + reason);
}

}  // namespace memtide

#endif  // MEMTIDE_TRACER_LEAK_TEXT_MODULE_H_
