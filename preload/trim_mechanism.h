// Giving freed memory back to the OS, for whichever allocator the process really uses (DESIGN.md decision 5):
// glibc malloc_trim(0), mimalloc mi_collect(true), jemalloc "arena.<all>.purge", tcmalloc
// MallocExtension_ReleaseFreeMemory. Detected at run time from the library that defines the next malloc, with
// no link dependency. Runs on the monitor thread or in memtide_trim(), never inside free(); under the guard.
#ifndef MEMTIDE_PRELOAD_TRIM_MECHANISM_H_
#define MEMTIDE_PRELOAD_TRIM_MECHANISM_H_

#include <stdint.h>

namespace memtide::internal {

// Looks up the allocator's entry points once (kAllocator* in segment.h). Safe to call repeatedly.
uint32_t DetectAllocator();

// Memory the allocator holds but does not use for live blocks, where it can tell; -1 otherwise.
// glibc: free chunk bytes (mallinfo2 fordblks); jemalloc: resident - allocated; tcmalloc: page heap free bytes.
int64_t AllocatorFreeBytes();

struct TrimResult {
  int64_t rss_before_bytes = 0;
  int64_t rss_after_bytes = 0;
  int64_t duration_ns = 0;
  bool supported = false;  // the allocator has a release entry point
};

// Releases what the allocator can; measures RSS around it. Takes no memtide lock.
TrimResult TrimAllocator();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_TRIM_MECHANISM_H_
