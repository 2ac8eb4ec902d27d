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

// Whether this call is the program's own (not memtide's, nor the next allocator's from inside a counted
// malloc). Symbol resolution is not needed for counting: the range table makes its own system calls.
bool Counting() { return tls_state.guard_depth == 0; }

// Before the real symbols are known the kernel is the next definition. These hooks never start the
// resolution themselves: an allocator calls mmap from inside its own initialization, with its init lock
// held, and resolution may call that allocator's malloc (real_symbols.h). rustc, whose executable defines
// malloc (jemalloc), hung at start that way.
bool Resolved() { return RealSymbolsResolved(); }

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
  void* result;
  if (real != nullptr && Resolved()) {
    result = real(address, length, protection, flags, fd, offset);
  } else {
    long raw = syscall(SYS_mmap, address, length, protection, flags, fd, offset);
    result = raw == -1 ? MAP_FAILED : reinterpret_cast<void*>(raw);  // syscall() has set errno
  }
  if (result != MAP_FAILED && Counting()) {
    RecordUnderGuard([&] {
      RecordMapping(reinterpret_cast<uintptr_t>(result), length, (flags & MAP_ANONYMOUS) != 0, protection != PROT_NONE);
    });
  }
  return result;
}

// mprotect and pkey_mprotect: the same accounting; pkey_mprotect with key -1 is mprotect.
int ProtectCounted(void* address, size_t length, int protection, int key, bool with_key) {
  int status;
  if (!with_key && Resolved()) {
    status = g_real.mprotect(address, length, protection);
  } else if (with_key && Resolved() && g_real.pkey_mprotect != nullptr) {
    status = g_real.pkey_mprotect(address, length, protection, key);
  } else {
    // syscall() returns -1 with errno set on failure.
    status = static_cast<int>(with_key ? syscall(SYS_pkey_mprotect, address, length, protection, key)
                                       : syscall(SYS_mprotect, address, length, protection));
  }
  if (status == 0 && Counting()) {
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
  const int status =
      Resolved() ? g_real.munmap(address, length) : static_cast<int>(syscall(SYS_munmap, address, length));
  if (status == 0 && Counting()) {
    RecordUnderGuard([&] { RecordUnmapping(reinterpret_cast<uintptr_t>(address), length); });
  }
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
  void* result;
  if (Resolved()) {
    result = g_real.mremap(old_address, old_length, new_length, flags, new_address);
  } else {
    long raw = syscall(SYS_mremap, old_address, old_length, new_length, flags, new_address);
    result = raw == -1 ? MAP_FAILED : reinterpret_cast<void*>(raw);  // syscall() has set errno
  }
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
  if (result != MAP_FAILED && Counting()) {
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
