// memtide's `dlclose` (dlclose_hook.cc) and the count it keeps for the tracer module.
#ifndef MEMTIDE_PRELOAD_DLCLOSE_HOOK_H_
#define MEMTIDE_PRELOAD_DLCLOSE_HOOK_H_

#include <stdint.h>

namespace memtide::internal {

// Successful dlclose calls of the process so far. Written with relaxed atomic increments, read the same way
// by the tracer module before each stack walk (MemtideTracerConfig::dlclose_calls).
extern uint64_t g_dlclose_calls;

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_DLCLOSE_HOOK_H_
