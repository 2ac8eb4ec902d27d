// See trim_mechanism.h. Monitor thread or memtide_trim(); under the guard, so whatever the allocator does
// here (its own mmaps, a mallinfo walk) is never counted as the program's memory.
#include "trim_mechanism.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#include <atomic>

#include "lifecycle.h"
#include "memtide/segment.h"
#include "proc_stats.h"
#include "real_symbols.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

// glibc 2.33+'s struct mallinfo2; declared here so no header of a particular glibc is needed.
struct MallInfo2 {
  size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

struct AllocatorEntryPoints {
  uint32_t kind = kAllocatorUnknown;
  int (*malloc_trim)(size_t) = nullptr;
  MallInfo2 (*mallinfo2)() = nullptr;
  void (*mi_collect)(bool) = nullptr;
  int (*mallctl)(const char*, void*, size_t*, void*, size_t) = nullptr;
  void (*release_free_memory)() = nullptr;
  int (*get_numeric_property)(const char*, size_t*) = nullptr;
};

AllocatorEntryPoints g_entry;
std::atomic<bool> g_detected{false};

bool NameContains(const char* path, const char* part) { return path != nullptr && strstr(path, part) != nullptr; }

template <typename F>
void Find(void* library, const char* name, F*& slot) {
  slot = reinterpret_cast<F*>(dlsym(library, name));
}

}  // namespace

uint32_t DetectAllocator() {
  if (g_detected.load(std::memory_order_acquire)) return g_entry.kind;
  ScopedGuard guard;
  EnsureRealSymbols();
  AllocatorEntryPoints entry;
  Dl_info info;
  const char* path = dladdr(reinterpret_cast<void*>(g_real.malloc), &info) != 0 ? info.dli_fname : nullptr;
  // RTLD_NOLOAD: only a handle to the library that is already there; never load anything.
  void* library = path != nullptr ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : nullptr;
  if (library != nullptr) {
    if (NameContains(path, "mimalloc")) {
      entry.kind = kAllocatorMimalloc;
      Find(library, "mi_collect", entry.mi_collect);
    } else if (NameContains(path, "jemalloc")) {
      entry.kind = kAllocatorJemalloc;
      Find(library, "mallctl", entry.mallctl);
    } else if (NameContains(path, "tcmalloc")) {
      entry.kind = kAllocatorTcmalloc;
      Find(library, "MallocExtension_ReleaseFreeMemory", entry.release_free_memory);
      Find(library, "MallocExtension_GetNumericProperty", entry.get_numeric_property);
    } else if (NameContains(path, "libc.so")) {
      entry.kind = kAllocatorGlibc;
      Find(library, "malloc_trim", entry.malloc_trim);
      Find(library, "mallinfo2", entry.mallinfo2);
    }
    dlclose(library);  // drops the reference RTLD_NOLOAD took; the library stays loaded
  }
  g_entry = entry;
  g_detected.store(true, std::memory_order_release);
  return g_entry.kind;
}

int64_t AllocatorFreeBytes() {
  DetectAllocator();
  ScopedGuard guard;
  switch (g_entry.kind) {
    case kAllocatorGlibc:
      if (g_entry.mallinfo2 != nullptr) return static_cast<int64_t>(g_entry.mallinfo2().fordblks);
      return -1;
    case kAllocatorJemalloc: {
      if (g_entry.mallctl == nullptr) return -1;
      uint64_t epoch = 1;
      size_t epoch_size = sizeof(epoch);
      g_entry.mallctl("epoch", &epoch, &epoch_size, &epoch, sizeof(epoch));  // refreshes the statistics
      size_t resident = 0, allocated = 0, size = sizeof(size_t);
      if (g_entry.mallctl("stats.resident", &resident, &size, nullptr, 0) != 0) return -1;
      size = sizeof(size_t);
      if (g_entry.mallctl("stats.allocated", &allocated, &size, nullptr, 0) != 0) return -1;
      return resident > allocated ? static_cast<int64_t>(resident - allocated) : 0;
    }
    case kAllocatorTcmalloc: {
      size_t free_bytes = 0;
      if (g_entry.get_numeric_property == nullptr ||
          !g_entry.get_numeric_property("tcmalloc.pageheap_free_bytes", &free_bytes)) {
        return -1;
      }
      return static_cast<int64_t>(free_bytes);
    }
  }
  return -1;  // mimalloc keeps no such total in release builds
}

TrimResult TrimAllocator() {
  DetectAllocator();
  ScopedGuard guard;
  TrimResult result;
  result.rss_before_bytes = ReadResidentBytes();
  int64_t start = MonotonicNs();
  switch (g_entry.kind) {
    case kAllocatorGlibc:
      if ((result.supported = g_entry.malloc_trim != nullptr)) g_entry.malloc_trim(0);
      break;
    case kAllocatorMimalloc:
      if ((result.supported = g_entry.mi_collect != nullptr)) g_entry.mi_collect(true);
      break;
    case kAllocatorJemalloc:
      // "arena.<MALLCTL_ARENAS_ALL>.purge": 4096 is jemalloc's MALLCTL_ARENAS_ALL.
      if ((result.supported = g_entry.mallctl != nullptr)) g_entry.mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
      break;
    case kAllocatorTcmalloc:
      if ((result.supported = g_entry.release_free_memory != nullptr)) g_entry.release_free_memory();
      break;
  }
  result.duration_ns = MonotonicNs() - start;
  result.rss_after_bytes = ReadResidentBytes();
  return result;
}

}  // namespace memtide::internal
