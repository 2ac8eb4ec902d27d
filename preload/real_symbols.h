// The next definitions of everything memtide interposes (DESIGN.md decision 1), resolved once with
// dlsym(RTLD_NEXT, …), and the static bootstrap arena that serves the allocations dlsym itself makes.
// Resolution runs on the first hook call of the process, whichever comes first (possibly before memtide's
// own constructor, from another library's constructor).
#ifndef MEMTIDE_PRELOAD_REAL_SYMBOLS_H_
#define MEMTIDE_PRELOAD_REAL_SYMBOLS_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "thread_state.h"

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
  int (*mprotect)(void*, size_t, int);
  int (*pkey_mprotect)(void*, size_t, int, int);  // null: the hook makes the system call
  void (*exit_now)(int);      // _exit
  void (*exit_now_c99)(int);  // _Exit
};

// Filled before g_real_ready becomes true, never changed afterwards.
extern RealSymbols g_real;
extern bool g_real_ready;
// The next allocator is glibc's, whose chunk header holds the usable size: reading it inline gives exactly
// what glibc's malloc_usable_size returns, without the call. Decided by the defining library at resolution;
// false for any other allocator.
extern bool g_next_is_glibc;
// Checks the inline read against glibc's malloc_usable_size on blocks of several sizes (small, large,
// mmapped); on a mismatch turns the inline read off and returns false. Monitor thread, first tick.
bool VerifyGlibcChunkHeaders();

// Resolves the symbols if nobody has. Returns false only on the thread that is resolving right now
// (a recursive call from inside dlsym), which must use the bootstrap arena. Allocates through the process's
// malloc (glibc's dlsym builds an error message for each optional symbol the next objects lack): memtide's
// own malloc serves that from the bootstrap arena, but an executable that defines malloc itself (rustc's
// jemalloc) gets the call, so this must never run from inside an allocator: the mmap family checks
// RealSymbolsResolved instead.
bool EnsureRealSymbols();
// Whether resolution has finished (acquire), without starting it.
bool RealSymbolsResolved();

// The object whose malloc the program calls when that is not memtide's: the executable when it defines malloc
// itself (a statically linked jemalloc or tcmalloc: rustc, many servers), or a library preloaded before
// libmemtide.so. Its heap is then invisible to memtide's hooks. Null when memtide's malloc is the one called;
// "" for an object without a path (the executable).
const char* MallocShadowingObject();

// The next definition past memtide of a loader function that glibc versions (dlsym, dlclose): dlvsym(RTLD_NEXT)
// with GLIBC_2.34 first (libc's own since glibc 2.34, found without allocating), then the libdl versions before
// it (x86-64's GLIBC_2.2.5, aarch64's GLIBC_2.17). Null if there is none.
void* NextLoaderFunction(const char* name);
// The same for an entry point memtide jumps to unconditionally (dlsym, dlopen): without it the process cannot
// run, so its absence ends the process with status 127 after one line on standard error. Allocation-free.
void* RequiredNextLoaderFunction(const char* name);

// The loaded object (executable or library) whose segments contain `address`: an identity to compare (null
// when none does), its path ("" for the executable) and the span of its executable segments. dl_iterate_phdr
// over program headers, not dladdr, whose search of the nearest symbol scans the whole dynamic symbol table:
// about 94,000 instructions a call in libc, and start-up made a dozen of them (1.0 of the 1.25 million
// instructions memtide added to /bin/true under callgrind). Allocation-free.
struct LoadedObject {
  const void* identity;
  const char* path;
  uintptr_t code_begin;
  uintptr_t code_end;
};
LoadedObject LoadedObjectOf(const void* address);

// Bootstrap arena: a static bump allocator; its blocks are never reused and never reach the real free.
inline constexpr size_t kBootstrapBytes = 256 * 1024;
extern char g_bootstrap[kBootstrapBytes];
void* BootstrapAllocate(size_t bytes, size_t alignment);
inline bool IsBootstrapBlock(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) - reinterpret_cast<uintptr_t>(g_bootstrap) < kBootstrapBytes;
}
size_t BootstrapBlockSize(const void* pointer);

// glibc's musable() for a live block: chunk size less the header (16 bytes for mmapped chunks, else 8).
inline size_t GlibcUsableSize(const void* pointer) {
  size_t field = static_cast<const size_t*>(pointer)[-1];
  return (field & ~size_t{7}) - 8 - ((field & 2) << 2);
}

// Usable size of a live block of the next allocator. Hot path. Other allocators may allocate while they
// answer (tcmalloc's malloc_usable_size creates its MallocExtension with operator new): under the guard.
inline size_t UsableSize(void* pointer) {
  if (__builtin_expect(g_next_is_glibc, true)) return GlibcUsableSize(pointer);
  ScopedGuard guard;
  return g_real.malloc_usable_size(pointer);
}

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_REAL_SYMBOLS_H_
