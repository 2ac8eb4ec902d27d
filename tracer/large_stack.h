// Runs a function on a stack mapped for the call. The leak text at exit (libdw's DWARF readers, Abseil's
// containers, the demangler's recursion) needs far more stack than the thread that runs the exit handlers
// may have: memtide's monitor thread (64 KiB) ends a process whose last program thread has ended (main called
// pthread_exit), and the child that made the text on that stack was killed by SIGSEGV.
#ifndef MEMTIDE_TRACER_LARGE_STACK_H_
#define MEMTIDE_TRACER_LARGE_STACK_H_

#include <stddef.h>

namespace memtide::internal {

inline constexpr size_t kLargeStackBytes = size_t{32} << 20;  // reserved; only the pages used take memory

// Calls function(argument) on a fresh stack of `bytes` (with a guard page below it) and returns true, or
// returns false without calling it when the stack cannot be mapped. One thread at a time (the exit path
// holds the tracer's writer lock; a throwaway child has one thread).
bool RunOnLargeStack(void (*function)(void*), void* argument, size_t bytes = kLargeStackBytes);

// Calls function() on a fresh large stack, or on this one when none can be mapped.
template <typename Function>
void CallOnLargeStack(Function& function) {
  if (!RunOnLargeStack([](void* callable) { (*static_cast<Function*>(callable))(); }, &function)) function();
}

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_LARGE_STACK_H_
