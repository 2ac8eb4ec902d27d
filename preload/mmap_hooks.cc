// Interposed mmap/mmap64/munmap/mremap/mprotect/pkey_mprotect (DESIGN.md decision 1): anonymous mappings the
// program makes are counted apart from the heap, while they are accessible. Calls made under the guard (by the next
// allocator from inside a counted malloc, or by memtide itself) pass through uncounted: those bytes are heap,
// already counted as such. Each of these is a syscall anyway; the accounting adds a spinlocked range-table
// update, made under the guard: a signal handler's mmap or mprotect that lands while this thread holds the
// table's lock passes through uncounted instead of waiting forever for it (GCs and JITs call mprotect from
// their signal handlers).
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heap_counters.h"
#include "mmap_accounting.h"
#include "real_symbols.h"
#include "thread_state.h"

#define MEMTIDE_EXPORT extern "C" __attribute__((visibility("default")))

using memtide::internal::g_real;
using memtide::internal::RealSymbolsResolved;
using memtide::internal::RecordMapping;
using memtide::internal::RecordProtection;
using memtide::internal::RecordRemapping;
using memtide::internal::RecordUnmapping;
using memtide::internal::ScopedGuard;
using memtide::internal::tls_state;

namespace {

// Before the real symbols are known the kernel is the next definition, and nothing is counted. These hooks
// never start the resolution themselves: an allocator calls mmap from inside its own initialization, with
// its init lock held, and resolution may call that allocator's malloc (real_symbols.h). rustc, whose
// executable defines malloc (jemalloc), hung at start that way.
bool Counting() { return RealSymbolsResolved() && tls_state.guard_depth == 0; }

// Runs a table update after a successful call: under the guard (see the top of this file), leaving errno as
// the real call set it.
template <typename Update>
void RecordUnderGuard(Update update) {
  int saved_errno = errno;
  ScopedGuard guard;
  update();
  errno = saved_errno;
}

void* MapCounted(void* (*real)(void*, size_t, int, int, int, off_t), void* address, size_t length, int protection,
                 int flags, int fd, off_t offset) {
  if (!Counting()) {
    if (real != nullptr && memtide::internal::g_real_ready) return real(address, length, protection, flags, fd, offset);
    long result = syscall(SYS_mmap, address, length, protection, flags, fd, offset);
    if (result == -1) return MAP_FAILED;  // syscall() has set errno
    return reinterpret_cast<void*>(result);
  }
  void* result = real(address, length, protection, flags, fd, offset);
  if (result != MAP_FAILED) {
    RecordUnderGuard([&] {
      RecordMapping(reinterpret_cast<uintptr_t>(result), length, (flags & MAP_ANONYMOUS) != 0, protection != PROT_NONE);
    });
  }
  return result;
}

// mprotect and pkey_mprotect: the same accounting; pkey_mprotect with key -1 is mprotect.
int ProtectCounted(void* address, size_t length, int protection, int key, bool with_key) {
  auto call = [&]() -> int {
    if (!with_key && memtide::internal::g_real_ready) return g_real.mprotect(address, length, protection);
    if (with_key && memtide::internal::g_real_ready && g_real.pkey_mprotect != nullptr) {
      return g_real.pkey_mprotect(address, length, protection, key);
    }
    // syscall() returns -1 with errno set on failure.
    return static_cast<int>(with_key ? syscall(SYS_pkey_mprotect, address, length, protection, key)
                                     : syscall(SYS_mprotect, address, length, protection));
  };
  if (!Counting()) return call();
  int status = call();
  if (status == 0) {
    RecordUnderGuard([&] { RecordProtection(reinterpret_cast<uintptr_t>(address), length, protection != PROT_NONE); });
  }
  return status;
}

}  // namespace

MEMTIDE_EXPORT void* mmap(void* address, size_t length, int protection, int flags, int fd, off_t offset) {
  return MapCounted(g_real.mmap, address, length, protection, flags, fd, offset);
}

MEMTIDE_EXPORT void* mmap64(void* address, size_t length, int protection, int flags, int fd, off_t offset) {
  return MapCounted(g_real.mmap64, address, length, protection, flags, fd, offset);
}

MEMTIDE_EXPORT int munmap(void* address, size_t length) {
  if (!Counting()) {
    if (memtide::internal::g_real_ready) return g_real.munmap(address, length);
    return static_cast<int>(syscall(SYS_munmap, address, length));
  }
  int status = g_real.munmap(address, length);
  if (status == 0) RecordUnderGuard([&] { RecordUnmapping(reinterpret_cast<uintptr_t>(address), length); });
  return status;
}

MEMTIDE_EXPORT void* mremap(void* old_address, size_t old_length, size_t new_length, int flags, ...) {
  void* new_address = nullptr;
  if (flags & MREMAP_FIXED) {
    va_list arguments;
    va_start(arguments, flags);
    new_address = va_arg(arguments, void*);
    va_end(arguments);
  }
  if (!Counting()) {
    if (memtide::internal::g_real_ready) return g_real.mremap(old_address, old_length, new_length, flags, new_address);
    long result = syscall(SYS_mremap, old_address, old_length, new_length, flags, new_address);
    if (result == -1) return MAP_FAILED;  // syscall() has set errno
    return reinterpret_cast<void*>(result);
  }
  void* result = g_real.mremap(old_address, old_length, new_length, flags, new_address);
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
  if (result != MAP_FAILED) {
    RecordUnderGuard([&] {
      RecordRemapping(reinterpret_cast<uintptr_t>(old_address), old_length, reinterpret_cast<uintptr_t>(result),
                      new_length, (flags & MREMAP_DONTUNMAP) != 0);
    });
  }
  return result;
}

MEMTIDE_EXPORT int mprotect(void* address, size_t length, int protection) {
  return ProtectCounted(address, length, protection, -1, false);
}

MEMTIDE_EXPORT int pkey_mprotect(void* address, size_t length, int protection, int key) {
  return ProtectCounted(address, length, protection, key, true);
}
