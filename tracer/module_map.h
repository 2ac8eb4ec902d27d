// Which loaded object (executable, shared library) a code address belongs to, so that stacks can be written as
// (module, offset) and symbolized later from the files on disk (trace_file.h). Runs in the tracer module on
// the slow path of the hot entries: only when a stack is seen for the first time, never for a known stack.
//
// The table is append-only: every module ever seen keeps its index, so the frames of a library that is
// dlclose'd before the end stay named. Lookups consider only the modules loaded at the last read. The loaded
// set is re-read (dl_iterate_phdr) only when the loader's load/unload counters (dlpi_adds, dlpi_subs) moved,
// which costs one dl_iterate_phdr call that stops at the first object; an address outside every module with
// unchanged counters (JIT code) resolves to -1 without a re-read.
//
// Unloads: a read that finds a module gone records its code range under a new unload epoch. Code seen before
// an epoch may since belong to another module (a library dlclose'd and another loaded at the same addresses),
// so the stack depot checks a stored stack against the ranges unloaded after it was resolved
// (UnloadedSince) before handing out its id again (stack_depot.h).
//
// Locking: dl_iterate_phdr takes the loader lock, and the loader calls malloc while holding it (dlopen), which
// reaches the tracer; so the loader is only ever entered with none of the tracer's locks held, and this map's
// own lock is taken only around reads and merges of already-collected data.
#ifndef MEMTIDE_TRACER_MODULE_MAP_H_
#define MEMTIDE_TRACER_MODULE_MAP_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <string>
#include <vector>

#include "spin_lock.h"

namespace memtide::internal {

struct ModuleInfo {
  std::string path;      // as the loader names it; the main program as the realpath of /proc/self/exe
  std::string build_id;  // NT_GNU_BUILD_ID in lowercase hex, "" if the object has none
  uintptr_t base = 0;    // load bias (dlpi_addr): file address = runtime address - base
  uintptr_t start = 0;   // [start, end): the executable PT_LOAD segments, as mapped
  uintptr_t end = 0;
};

// The executable range of the loaded object containing `address` (one dl_iterate_phdr walk; takes the loader
// lock, allocation-free). False if no loaded object contains it.
bool FindExecutableRange(uintptr_t address, uintptr_t* start, uintptr_t* end);

class ModuleMap {
 public:
  ModuleMap();
  ModuleMap(const ModuleMap&) = delete;
  ModuleMap& operator=(const ModuleMap&) = delete;

  // For each address, the index of the loaded module containing it, or -1. Allocates; may call
  // dl_iterate_phdr: call it with none of the tracer's locks held.
  void Resolve(const uintptr_t* addresses, size_t count, int32_t* indices);

  // Re-reads the loaded objects (always, whatever the counters say). Same locking rule as Resolve.
  void Refresh();
  // Re-reads them if the loader's counters moved since the last read (one short dl_iterate_phdr call when
  // they did not). Same locking rule as Resolve.
  void RefreshIfChanged();

  // Moves each time a read finds a module gone (0: none ever was). Relaxed: a stale value only delays a check.
  uint32_t unload_epoch() const { return unload_epoch_.load(std::memory_order_relaxed); }
  // Whether any of the addresses lies in code unloaded after `epoch`. Allocation-free; takes the map's lock
  // (never the loader's), so it may be called under other tracer locks that the map's lock nests inside.
  bool UnloadedSince(uint32_t epoch, const uintptr_t* addresses, size_t count) const;

  // The loader's unload counter (dlpi_subs) at the last read: when it moves, code addresses may have changed
  // hands (the tracer then drops its cached unwind rules).
  uint64_t unloads() const { return unloads_.load(std::memory_order_relaxed); }

  // Copy of every module ever seen; module i of the copy is module index i. Allocates; takes the map's lock.
  std::vector<ModuleInfo> Modules() const;

  // fork(): the map's lock is one of those before_fork takes.
  void LockForFork() { lock_.Lock(); }
  void UnlockForFork() { lock_.Unlock(); }
  void ResetAfterFork() { lock_.ResetAfterFork(); }

 private:
  struct LoadedRange {
    uintptr_t start;
    uintptr_t end;
    int32_t index;
  };

  struct UnloadedRange {
    uintptr_t start;
    uintptr_t end;
    uint32_t epoch;  // the unload epoch the read that found it gone started
  };

  int32_t FindLocked(uintptr_t address) const;
  // Merges one full read (taken without the lock) unless a newer read was merged already.
  void Merge(std::vector<ModuleInfo>& read, uint64_t generation, uint64_t unloads);

  mutable SpinLock lock_;
  std::vector<ModuleInfo> modules_;  // append-only
  std::vector<LoadedRange> loaded_;  // sorted by start
  std::vector<UnloadedRange> unloaded_;  // in epoch order
  std::atomic<uint32_t> unload_epoch_{0};
  // dlpi_adds + dlpi_subs at the last merged read; ~0 before the first. Read without the lock as a hint.
  std::atomic<uint64_t> generation_{~uint64_t{0}};
  std::atomic<uint64_t> unloads_{0};
  std::string main_program_path_;
};

}  // namespace memtide::internal

#endif  // MEMTIDE_TRACER_MODULE_MAP_H_
