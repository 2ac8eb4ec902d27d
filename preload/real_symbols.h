// The next definitions of everything memtide interposes (DESIGN.md decision 1), resolved once with
// dlsym(RTLD_NEXT, …), and the static bootstrap arena that serves the allocations dlsym itself makes.
// Resolution runs on the first hook call of the process, whichever comes first (possibly before memtide's
// own constructor, from another library's constructor).
#ifndef MEMTIDE_PRELOAD_REAL_SYMBOLS_H_
#define MEMTIDE_PRELOAD_REAL_SYMBOLS_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

namespace memtide::internal {

struct RealSymbols {
  void* (*malloc)(size_t);
  void (*free)(void*);
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  void* (*reallocarray)(void*, size_t, size_t);
  int (*posix_memalign)(void**, size_t, size_t);
  void* (*aligned_alloc)(size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*valloc)(size_t);
  void* (*pvalloc)(size_t);
  size_t (*malloc_usable_size)(void*);
  void (*free_sized)(void*, size_t);                   // null where the next allocator lacks it
  void (*free_aligned_sized)(void*, size_t, size_t);   // null where the next allocator lacks it
  void* (*mmap)(void*, size_t, int, int, int, off_t);
  void* (*mmap64)(void*, size_t, int, int, int, off_t);
  int (*munmap)(void*, size_t);
  void* (*mremap)(void*, size_t, size_t, int, ...);
  void (*exit_now)(int);      // _exit
  void (*exit_now_c99)(int);  // _Exit
};

// Filled before g_real_ready becomes true, never changed afterwards.
extern RealSymbols g_real;
extern bool g_real_ready;

// Resolves the symbols if nobody has. Returns false only on the thread that is resolving right now
// (a recursive call from inside dlsym), which must use the bootstrap arena. Allocation-free itself.
bool EnsureRealSymbols();

// Bootstrap arena: a static bump allocator; its blocks are never reused and never reach the real free.
void* BootstrapAllocate(size_t bytes, size_t alignment);
bool IsBootstrapBlock(const void* pointer);
size_t BootstrapBlockSize(const void* pointer);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_REAL_SYMBOLS_H_
