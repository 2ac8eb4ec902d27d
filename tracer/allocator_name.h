// Names of the segment's kAllocator* codes, shared by the preload's log lines and the CLI's reports.
#ifndef MEMTIDE_TRACER_ALLOCATOR_NAME_H_
#define MEMTIDE_TRACER_ALLOCATOR_NAME_H_

#include <stdint.h>

namespace memtide {

// "glibc", "mimalloc", "jemalloc", "tcmalloc", or "unknown". Allocation-free.
const char* AllocatorName(uint32_t allocator);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_ALLOCATOR_NAME_H_
