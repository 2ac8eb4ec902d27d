// pipe/pipe2 interposers that move libunwind's pipe to high descriptor numbers (pipe_hooks.cc says why).
#ifndef MEMTIDE_PRELOAD_PIPE_HOOKS_H_
#define MEMTIDE_PRELOAD_PIPE_HOOKS_H_

namespace memtide::internal {

// Notes the code of the library that defines `libunwind_function` (libunwind's, found through the tracer
// module): pipes it asks for under memtide's guard go to high numbers from now on. Null: nothing changes. Call
// once the module (and so libunwind) is loaded and before it first unwinds.
void MoveLibunwindPipesHigh(const void* libunwind_function);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_PIPE_HOOKS_H_
