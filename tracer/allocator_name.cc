// See allocator_name.h.
#include "allocator_name.h"

#include "memtide/segment.h"

namespace memtide {

const char* AllocatorName(uint32_t allocator) {
  switch (allocator) {
    case kAllocatorGlibc: return "glibc";
    case kAllocatorMimalloc: return "mimalloc";
    case kAllocatorJemalloc: return "jemalloc";
    case kAllocatorTcmalloc: return "tcmalloc";
  }
  return "unknown";
}

}  // namespace memtide
