// The leak text at exit, rendered in a throwaway child (throwaway_child.h) and printed by the program: loading
// the symbolizer (libmemtide_leak_text.so with libdw and Abseil, leak_text_module.h) and reading the
// program's symbols happen in the copy, so that
//   - a crash in them (a malformed ELF file, a libdw bug) or the OOM killer (symbolizing a large program can
//     take a hundred MiB or more) ends the copy, not the program, which prints one line instead;
//   - the program never loads those libraries, whose static objects would flush std::cout at its very end
//     and wait there for stdout's lock if another thread holds it;
//   - the program's own memory does not grow at exit.
// The child writes nothing itself: what it would print comes back through a shared mapping, and this process
// prints it, where the program's log settings apply.
#ifndef MEMTIDE_TRACER_LEAK_TEXT_CHILD_H_
#define MEMTIDE_TRACER_LEAK_TEXT_CHILD_H_

#include <stdint.h>

#include <string>

#include "leak_text_module.h"

namespace memtide::internal {

struct LeakTextCall {
  MemtideLeakTextFunction (*load)(std::string* reason) = nullptr;  // loads the module (in the child)
  const std::string* trace = nullptr;  // the tracer's document of its live sites
  std::string trace_path;              // "" for none
  std::string suppressions;            // "" for none
  int32_t top_stacks = 0;
  void (*log_line)(const char* line) = nullptr;
  void (*write_text)(const char* text, size_t length) = nullptr;
};

enum class LeakTextOutcome {
  kPrinted,   // the child rendered it and this process printed it
  kFailed,    // the child crashed or was killed: doing it here would risk the same; *why says what happened
  kNotTried,  // no child could be started, or it waited for a lock another thread held: do it here
};

// A child that uses no CPU time for this long is waiting for a lock another thread held at the clone.
inline constexpr int kLeakTextStallMs = 2000;

LeakTextOutcome PrintLeakTextFromChild(const LeakTextCall& call, int stall_ms, std::string* why);

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_LEAK_TEXT_CHILD_H_
