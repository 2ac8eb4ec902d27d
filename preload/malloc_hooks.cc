// The interposed malloc family (DESIGN.md decisions 1-3). Hot path: runs on every allocation and free of
// the traced process. Each hook: one predicted-false bypass check (memtide's own work, or symbols not yet
// resolved), the real call under the guard (so whatever the next allocator does through interposed symbols
// stays uncounted), account, return. No locks, no allocation of memtide's own, no syscalls.
// `free` accounts before the real free, so another thread cannot reuse the address in between.
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heap_counters.h"
#include "real_symbols.h"
#include "thread_state.h"
#include "trace_hooks.h"

#define MEMTIDE_EXPORT extern "C" __attribute__((visibility("default")))
#define MEMTIDE_NOINLINE __attribute__((noinline))

using memtide::internal::BootstrapAllocate;
using memtide::internal::BootstrapBlockSize;
using memtide::internal::CountAndTraceAlloc;
using memtide::internal::CountFree;
using memtide::internal::EnsureRealSymbols;
using memtide::internal::g_real;
using memtide::internal::g_real_ready;
using memtide::internal::IsBootstrapBlock;
using memtide::internal::ScopedGuard;
using memtide::internal::g_next_is_glibc;
using memtide::internal::GlibcUsableSize;
using memtide::internal::tls_state;
using memtide::internal::TraceAlloc;
using memtide::internal::TraceFree;
using memtide::internal::TryCountUntracedAlloc;
using memtide::internal::TryCountUntracedFree;
using memtide::internal::UsableSize;

namespace {

constexpr size_t kPageBytes = 4096;

// True when this call must not be counted as is: memtide's own work, or symbols not resolved yet.
inline bool MustBypass() { return MEMTIDE_PREDICT_FALSE(tls_state.guard_depth != 0 || !g_real_ready); }

// Resolved, the next allocator is glibc, and this is not memtide's own work.
inline bool OnGlibcFastPath() { return g_next_is_glibc && tls_state.guard_depth == 0; }

enum class Bypass { kBootstrap, kUncounted, kCounted };

// Slow half of every allocation hook: resolves the real symbols on first use. kBootstrap: this thread is
// inside that resolution (dlsym allocating), serve from the arena. kUncounted: memtide's own work, forward.
// kCounted: nothing special after all, take the normal path.
MEMTIDE_NOINLINE Bypass ClassifyBypass() {
  if (!EnsureRealSymbols()) return Bypass::kBootstrap;
  return tls_state.guard_depth != 0 ? Bypass::kUncounted : Bypass::kCounted;
}

inline void CountBlock(void* pointer, size_t requested) {
  if (MEMTIDE_PREDICT_TRUE(pointer != nullptr)) CountAndTraceAlloc(pointer, requested, UsableSize(pointer));
}

// Calls the real allocation function under the guard and counts the block it returns.
template <typename Call>
inline void* CountedAllocation(size_t requested, Call call) {
  void* result;
  {
    ScopedGuard guard;
    result = call();
  }
  CountBlock(result, requested);
  return result;
}

// Frees a block through `release`, counting it first. Blocks from the bootstrap arena are never reused and
// never reach the real allocator.
template <typename Release>
inline void CountedFree(void* pointer, Release release) {
  if (MEMTIDE_PREDICT_FALSE(IsBootstrapBlock(pointer))) return;
  if (MEMTIDE_PREDICT_FALSE(MustBypass())) {
    EnsureRealSymbols();  // a non-bootstrap block implies resolution finished
    if (tls_state.guard_depth != 0) return release();
  }
  TraceFree(pointer);
  CountFree(UsableSize(pointer));
  ScopedGuard guard;
  release();
}

// realloc of a bootstrap block: move it into a fresh block (counted like any malloc).
MEMTIDE_NOINLINE void* MoveFromBootstrap(void* pointer, size_t bytes) {
  void* moved = malloc(bytes);
  size_t old_size = BootstrapBlockSize(pointer);
  if (moved != nullptr) memcpy(moved, pointer, old_size < bytes ? old_size : bytes);
  return moved;
}

// realloc/reallocarray of a real block, `bytes` = the requested total.
template <typename Call>
void* CountedReallocation(void* pointer, size_t bytes, Call call) {
  if (MEMTIDE_PREDICT_FALSE(IsBootstrapBlock(pointer))) return MoveFromBootstrap(pointer, bytes);
  if (MEMTIDE_PREDICT_FALSE(MustBypass()) && ClassifyBypass() != Bypass::kCounted) {
    return call();  // guarded: the block is memtide's own
  }
  size_t old_usable = UsableSize(pointer);
  TraceFree(pointer);  // before the call: the old address may be reused as soon as realloc releases it
  void* result;
  {
    ScopedGuard guard;
    result = call();
  }
  if (result != nullptr) {
    CountFree(old_usable);
    CountAndTraceAlloc(result, bytes, UsableSize(result));
  } else if (bytes == 0) {
    CountFree(old_usable);  // glibc's realloc(p, 0) frees p and returns NULL
  } else {
    // Failed: the old block lives on. Offered to the tracer again (it was untraced before the call) as if
    // allocated here, with its usable size for a size; in sample mode it is traced only if the countdown says so.
    TraceAlloc(pointer, old_usable, old_usable);
  }
  return result;
}

// What the glibc fast paths of malloc and free leave out of line, so that the hooks themselves save no
// registers but the one holding the requested size: GCC saves every register any path of a function uses.
MEMTIDE_NOINLINE void* CountAndTraceAllocOutOfLine(void* result, size_t bytes) {
  if (result != nullptr) CountAndTraceAlloc(result, bytes, GlibcUsableSize(result));
  return result;
}

MEMTIDE_NOINLINE void* MallocOffFastPath(size_t bytes) {
  if (MustBypass()) {
    switch (ClassifyBypass()) {
      case Bypass::kBootstrap: return BootstrapAllocate(bytes, 0);
      case Bypass::kUncounted: return g_real.malloc(bytes);
      case Bypass::kCounted: break;
    }
  }
  return CountedAllocation(bytes, [&] { return g_real.malloc(bytes); });
}

MEMTIDE_NOINLINE void FreeOffFastPath(void* pointer) {
  CountedFree(pointer, [&] { g_real.free(pointer); });
}

}  // namespace

MEMTIDE_EXPORT void* malloc(size_t bytes) {
  // glibc's malloc and free never call back into interposed symbols (their mmaps are internal calls), so on
  // glibc the real call needs no guard and the usable size is read from the chunk header: the common case
  // costs one check, the call, and the counter update.
  if (MEMTIDE_PREDICT_TRUE(OnGlibcFastPath())) {
    void* result = g_real.malloc(bytes);
    if (MEMTIDE_PREDICT_TRUE(result != nullptr) && TryCountUntracedAlloc(GlibcUsableSize(result))) return result;
    return CountAndTraceAllocOutOfLine(result, bytes);
  }
  return MallocOffFastPath(bytes);
}

MEMTIDE_EXPORT void free(void* pointer) {
  if (MEMTIDE_PREDICT_TRUE(pointer != nullptr && OnGlibcFastPath() && !IsBootstrapBlock(pointer)) &&
      TryCountUntracedFree(pointer, GlibcUsableSize(pointer))) {
    return g_real.free(pointer);
  }
  if (pointer != nullptr) FreeOffFastPath(pointer);
}

MEMTIDE_EXPORT void* calloc(size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (MustBypass()) {
    switch (ClassifyBypass()) {
      case Bypass::kBootstrap: return BootstrapAllocate(bytes, 0);  // fresh static memory: already zero
      case Bypass::kUncounted: return g_real.calloc(count, size);
      case Bypass::kCounted: break;
    }
  }
  return CountedAllocation(bytes, [&] { return g_real.calloc(count, size); });
}

MEMTIDE_EXPORT void* realloc(void* pointer, size_t bytes) {
  if (pointer == nullptr) return malloc(bytes);
  return CountedReallocation(pointer, bytes, [&] { return g_real.realloc(pointer, bytes); });
}

MEMTIDE_EXPORT void* reallocarray(void* pointer, size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (pointer == nullptr) return malloc(bytes);
  return CountedReallocation(pointer, bytes, [&] {
    return g_real.reallocarray != nullptr ? g_real.reallocarray(pointer, count, size) : g_real.realloc(pointer, bytes);
  });
}

MEMTIDE_EXPORT int posix_memalign(void** out, size_t alignment, size_t bytes) {
  if (MustBypass()) {
    switch (ClassifyBypass()) {
      case Bypass::kBootstrap:
        if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
        *out = BootstrapAllocate(bytes, alignment);
        return *out != nullptr ? 0 : ENOMEM;
      case Bypass::kUncounted: return g_real.posix_memalign(out, alignment, bytes);
      case Bypass::kCounted: break;
    }
  }
  int status;
  {
    ScopedGuard guard;
    status = g_real.posix_memalign(out, alignment, bytes);
  }
  if (status == 0) CountBlock(*out, bytes);
  return status;
}

namespace {

// aligned_alloc, memalign, valloc, pvalloc: the same shape around a different real function.
template <typename Call>
void* AlignedAllocation(size_t bytes, size_t alignment, Call call) {
  if (MustBypass()) {
    switch (ClassifyBypass()) {
      case Bypass::kBootstrap: return BootstrapAllocate(bytes, alignment);
      case Bypass::kUncounted: return call();
      case Bypass::kCounted: break;
    }
  }
  return CountedAllocation(bytes, call);
}

}  // namespace

namespace {

// For the aligned functions the next allocator lacks (RealSymbols keeps only its own): posix_memalign, which
// every allocator has, with the alignment rounded up to what it accepts.
void* ViaPosixMemalign(size_t alignment, size_t bytes) {
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  if ((alignment & (alignment - 1)) != 0) alignment = size_t{1} << (64 - __builtin_clzll(alignment));
  void* result = nullptr;
  int status = g_real.posix_memalign(&result, alignment, bytes);
  if (status != 0) {
    errno = status;
    return nullptr;
  }
  return result;
}

size_t RoundToPages(size_t bytes) { return (bytes + kPageBytes - 1) & ~(kPageBytes - 1); }

}  // namespace

MEMTIDE_EXPORT void* aligned_alloc(size_t alignment, size_t bytes) {
  return AlignedAllocation(bytes, alignment, [&] {
    return g_real.aligned_alloc != nullptr ? g_real.aligned_alloc(alignment, bytes) : ViaPosixMemalign(alignment, bytes);
  });
}

MEMTIDE_EXPORT void* memalign(size_t alignment, size_t bytes) {
  return AlignedAllocation(bytes, alignment, [&] {
    return g_real.memalign != nullptr ? g_real.memalign(alignment, bytes) : ViaPosixMemalign(alignment, bytes);
  });
}

MEMTIDE_EXPORT void* valloc(size_t bytes) {
  return AlignedAllocation(bytes, kPageBytes, [&] {
    return g_real.valloc != nullptr ? g_real.valloc(bytes) : ViaPosixMemalign(kPageBytes, bytes);
  });
}

MEMTIDE_EXPORT void* pvalloc(size_t bytes) {
  return AlignedAllocation(RoundToPages(bytes), kPageBytes, [&] {
    return g_real.pvalloc != nullptr ? g_real.pvalloc(bytes) : ViaPosixMemalign(kPageBytes, RoundToPages(bytes));
  });
}

MEMTIDE_EXPORT size_t malloc_usable_size(void* pointer) {
  if (pointer == nullptr) return 0;
  if (IsBootstrapBlock(pointer)) return BootstrapBlockSize(pointer);
  EnsureRealSymbols();
  return g_real.malloc_usable_size(pointer);
}

MEMTIDE_EXPORT void free_sized(void* pointer, size_t bytes) {
  if (pointer == nullptr) return;
  CountedFree(pointer, [&] {
    if (g_real.free_sized != nullptr) return g_real.free_sized(pointer, bytes);
    g_real.free(pointer);
  });
}

MEMTIDE_EXPORT void free_aligned_sized(void* pointer, size_t alignment, size_t bytes) {
  if (pointer == nullptr) return;
  CountedFree(pointer, [&] {
    if (g_real.free_aligned_sized != nullptr) return g_real.free_aligned_sized(pointer, alignment, bytes);
    g_real.free(pointer);
  });
}
