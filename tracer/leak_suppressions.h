// Which blocks still allocated at exit are the program's leaks: LeakSanitizer-format suppressions, and the
// C runtime's own blocks (what valgrind's libc freeres would have freed), taken out and counted apart.
// Runs in the CLI, and in a traced program at exit (LeakSummaryText).
#ifndef MEMTIDE_TRACER_LEAK_SUPPRESSIONS_H_
#define MEMTIDE_TRACER_LEAK_SUPPRESSIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "trace_report.h"

namespace memtide {

// LeakSanitizer's suppressions format: one `leak:PATTERN` per line, `#` comments, blank lines. A pattern
// matches a stack when it matches any frame's function, source file, or module (path or basename), with
// LSan's semantics (SuppressionPatternMatches).
class LeakSuppressions {
 public:
  LeakSuppressions() = default;
  // Reads a file; an unreadable file or a line that is not `leak:PATTERN` is an error naming file and line.
  static absl::StatusOr<LeakSuppressions> Load(const std::string& path);
  static absl::StatusOr<LeakSuppressions> Parse(absl::string_view text, const std::string& origin);

  // The index of the first pattern that matches the stack, or -1.
  int Match(const Stack& stack) const;
  int MatchFrames(absl::Span<const Frame* const> frames) const;  // a stack read through SiteFrames
  const std::vector<std::string>& patterns() const { return patterns_; }
  bool empty() const { return patterns_.empty(); }

 private:
  std::vector<std::string> patterns_;
};

// LSan's TemplateMatch: `*` matches any run of characters, a leading `^` anchors at the start, a trailing
// `$` at the end; otherwise the pattern may match anywhere (substring). An empty text never matches.
bool SuppressionPatternMatches(absl::string_view pattern, absl::string_view text);

// The C runtime's own blocks, which valgrind's --run-libc-freeres (and libstdc++'s freeres) would free at
// exit and LeakSanitizer never reports, judged by the stack alone: what ClassifyLeaks falls back on when the
// trace has no exit-cleanup probe figures (trace_file.h, "freed_at_exit"), which are exact:
//   1. blocks libc's freeres releases, recognised by a function among the innermost frames while they stay
//      in libc or the loader (kFreedAtExit in leak_suppressions.cc): stdio buffers (_IO_file_doallocate,
//      _IO_wfile_doallocate: the buffer a FILE gets on its first read or write; the FILE itself, from an
//      fopen never fclosed, stays a leak), threads' TLS (_dl_allocate_tls, allocate_dtv: released with libc's
//      cache of thread stacks), the loader's object table for the unwinder (_dl_find_object_update) and its
//      init/fini order lists (_dl_map_object_deps). What dlopen keeps of a library that stays loaded
//      (link_map, names, versions) is not freed, and valgrind counts it as still in use: it stays a leak;
//   2. blocks whose whole stack lies in the runtime's own modules: libc.so, the dynamic loader (ld-linux*,
//      ld.so), libstdc++.so, libgcc_s.so (and memtide's own) — no frame in the program or its other
//      libraries (dl_init's and libstdc++'s start-up allocations, such as the emergency exception pool).
// An empty stack (unwinding failed) is not the runtime's. Checked against valgrind by tests/leaks. This one
// function is the rule: tune it here.
bool IsCRuntimeBlock(const Stack& stack);
bool IsCRuntimeBlockFrames(absl::Span<const Frame* const> frames);
// A thread's TLS (_dl_allocate_tls, allocate_dtv under pthread_create): the thread library's whether the
// thread has ended (libc's cleanup frees it with its stack cache) or still runs at exit (valgrind then counts it
// as "possibly lost"). Never the program's leak, with or without the exit-cleanup probe.
bool IsThreadTablesBlockFrames(absl::Span<const Frame* const> frames);
// The frame lies in one of the runtime's own modules of rule 2 above (by module basename).
bool InCRuntimeModule(const Frame& frame);

// Classifies an exit trace's live sites (report->sites) into leaks, runtime leaks and suppressed blocks (a
// site may be split: the probe's runtime part, the rest leaked or suppressed; Site::runtime_* and leaked_*),
// grouped by stack and sorted by bytes, and fills the totals. A report read back from JSON (no sites) has
// its leaks filtered by `suppressions` instead. Snapshots are left alone. Of a trace's lists, the first
// `named_entries` entries carry their stack (what the caller shows), the others their figures only: with
// tens of thousands of leaked stacks, copying every one was a second copy of every live site's stack.
void ClassifyLeaks(const LeakSuppressions& suppressions, TraceReport* report, size_t named_entries = SIZE_MAX);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_LEAK_SUPPRESSIONS_H_
