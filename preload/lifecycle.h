// Process-wide state of the preload that the other parts read: options and the process clock.
// Set once in the constructor (and again in a fork child).
#ifndef MEMTIDE_PRELOAD_LIFECYCLE_H_
#define MEMTIDE_PRELOAD_LIFECYCLE_H_

#include <stdint.h>

#include "options.h"

namespace memtide::internal {

const Options& RuntimeOptions();
// Monotonic nanoseconds since memtide started in this process (since fork in a child).
int64_t ElapsedNs();
int64_t MonotonicNs();
// Whether this process's segment outlives it (MEMTIDE_KEEP_SEGMENT, or the process `memtide run` reports on).
bool KeepSegmentAtExit();
// True in the process memtide initialized (false in a vfork child sharing its memory, or before the constructor).
bool IsInitializedProcess();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_LIFECYCLE_H_
