// Anonymous-mapping accounting: which address ranges the program mapped anonymously through the interposed
// mmap/mremap, and which of them are accessible (mprotect), so that munmap (whole or partial), MAP_FIXED
// replacement, mremap and mprotect add and subtract exactly what they change. Called from the mmap hooks (a
// syscall each already: a spinlock here costs nothing measurable) and read by the monitor thread. Never
// allocates from the heap: the range table lives in pages mapped with the raw syscall.
#ifndef MEMTIDE_PRELOAD_MMAP_ACCOUNTING_H_
#define MEMTIDE_PRELOAD_MMAP_ACCOUNTING_H_

#include <stddef.h>
#include <stdint.h>

namespace memtide::internal {

struct MmapTotals {
  int64_t current_bytes;
  int64_t peak_bytes;
  bool table_full;  // a mapping could not be recorded: totals are a lower bound
};

// [start, start+length) was just mapped. Anonymous ranges are counted while `accessible` (any protection but
// PROT_NONE: a reservation of address space is not memory; JVMs and V8 reserve gigabytes that way and make
// parts accessible with mprotect). Any mapping first removes what it replaced (MAP_FIXED over an earlier one).
void RecordMapping(uintptr_t start, size_t length, bool anonymous, bool accessible);
// mprotect succeeded on [start, start+length): anonymous parts made accessible start counting, parts made
// PROT_NONE stop.
void RecordProtection(uintptr_t start, size_t length, bool accessible);
void RecordUnmapping(uintptr_t start, size_t length);
// mremap moved/resized [old, old+old_length) to [new, new+new_length); `keep_old`: MREMAP_DONTUNMAP.
void RecordRemapping(uintptr_t old_start, size_t old_length, uintptr_t new_start, size_t new_length, bool keep_old);
MmapTotals ReadMmapTotals();
// Test hook: the ranges in the table.
size_t MmapRangeCount();
void ResetMmapPeak();
// fork(): the lock may have been held by a thread that does not exist in the child.
void ResetMmapLockInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_MMAP_ACCOUNTING_H_
