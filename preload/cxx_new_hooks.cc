// C++ operator new/delete. libstdc++'s operators call malloc/free, which memtide already counts; but mimalloc,
// jemalloc and tcmalloc define the operators themselves, and under them `new` never reaches malloc. So the
// operators are interposed too, and count only when the next definition belongs to the same library as the
// next malloc (the allocator's own); otherwise they forward untouched and the malloc underneath counts.
// Hot path for C++ programs on glibc: one predicted branch and an indirect call more than libstdc++'s
// operator. Under another allocator its operators run under the guard (see CountedNew).
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>

#include "heap_counters.h"
#include "real_symbols.h"
#include "thread_state.h"
#include "trace_hooks.h"

#define MEMTIDE_EXPORT extern "C" __attribute__((visibility("default")))

namespace memtide::internal {
namespace {

// Every operator, in the order of kSymbols.
enum Operator {
  kNew, kNewArray, kNewNothrow, kNewArrayNothrow, kNewAligned, kNewArrayAligned, kNewAlignedNothrow,
  kNewArrayAlignedNothrow, kDelete, kDeleteArray, kDeleteSized, kDeleteArraySized, kDeleteNothrow,
  kDeleteArrayNothrow, kDeleteAligned, kDeleteArrayAligned, kDeleteSizedAligned, kDeleteArraySizedAligned,
  kDeleteAlignedNothrow, kDeleteArrayAlignedNothrow, kOperatorCount
};

constexpr const char* kSymbols[kOperatorCount] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm",
    "_ZdaPvm", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t"};

void* g_next[kOperatorCount];
std::atomic<int> g_state{0};  // 0 unresolved, 1 resolving, 2 resolved
bool g_counts = false;        // the next operators are the allocator's own: count here

const void* LibraryOf(const void* function) { return LoadedObjectOf(function).identity; }

__attribute__((noinline)) void ResolveOperators() {
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1)) {
    while (g_state.load(std::memory_order_acquire) != 2) {
    }
    return;
  }
  ScopedGuard guard;
  EnsureRealSymbols();
  for (int i = 0; i < kOperatorCount; ++i) g_next[i] = dlsym(RTLD_NEXT, kSymbols[i]);
  const void* allocator = LibraryOf(reinterpret_cast<const void*>(g_real.malloc));
  g_counts = g_next[kNew] != nullptr && LibraryOf(g_next[kNew]) == allocator;
  // An operator the allocator lacks (mimalloc has no nothrow deletes) must not come from another library,
  // whose blocks would not be the allocator's: it falls back to the counted C functions.
  for (int i = 0; i < kOperatorCount; ++i) {
    if (g_counts && LibraryOf(g_next[i]) != allocator) g_next[i] = nullptr;
  }
  g_state.store(2, std::memory_order_release);
}

// A null slot is looked up again (libstdc++ may have been loaded since, or only into a local scope, where
// RTLD_NEXT cannot see it but RTLD_NOLOAD can).
__attribute__((noinline)) void* LookUpLate(Operator op) {
  ScopedGuard guard;
  void* found = dlsym(RTLD_NEXT, kSymbols[op]);
  if (found == nullptr) {
    if (void* libstdcxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD)) {
      found = dlsym(libstdcxx, kSymbols[op]);
      dlclose(libstdcxx);
    }
  }
  if (found != nullptr && !g_counts) g_next[op] = found;
  return g_counts ? nullptr : found;
}

inline void* Next(Operator op) {
  if (__builtin_expect(g_state.load(std::memory_order_acquire) != 2, false)) ResolveOperators();
  void* next = g_next[op];
  return __builtin_expect(next != nullptr, true) ? next : LookUpLate(op);
}

// Every operator new takes the requested size first.
template <typename... Rest>
size_t RequestedBytes(size_t bytes, Rest...) {
  return bytes;
}

inline bool Counting() { return g_counts && tls_state.guard_depth == 0; }

[[noreturn]] void OutOfMemory() {
  static const char kMessage[] = "memtide: operator new: out of memory and no C++ runtime to throw std::bad_alloc\n";
  ssize_t ignored = write(2, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  abort();
}

// `fallback` allocates through the interposed C functions (counted there) when no operator is reachable.
// An allocator's own operators may re-enter malloc through the PLT (jemalloc's aligned new, its delete), so
// they run under the guard. A throwing new cannot (this TU has no exceptions to lower the guard on the way
// out), so it is called as its nothrow sibling under the guard, and only if that fails, as itself, unguarded,
// for the new_handler loop and std::bad_alloc.
char g_nothrow_tag;  // std::nothrow_t is empty: any address stands for std::nothrow

template <typename Fallback, typename... Args>
void* CountedNew(Operator op, Operator nothrow_op, Fallback fallback, Args... args) {
  void* next = Next(op);
  if (__builtin_expect(next == nullptr, false)) return fallback();
  if (!g_counts) return reinterpret_cast<void* (*)(Args...)>(next)(args...);  // malloc underneath counts
  void* result = nullptr;
  void* nothrow = Next(nothrow_op);
  if (nothrow != nullptr) {
    ScopedGuard guard;
    result = reinterpret_cast<void* (*)(Args..., const void*)>(nothrow)(args..., &g_nothrow_tag);
  }
  if (result == nullptr) result = reinterpret_cast<void* (*)(Args...)>(next)(args...);
  if (result != nullptr && Counting()) CountAndTraceAlloc(result, RequestedBytes(args...), UsableSize(result));
  return result;
}

template <typename Fallback, typename... Args>
void* CountedNewNothrow(Operator op, Fallback fallback, Args... args) {
  void* next = Next(op);
  if (__builtin_expect(next == nullptr, false)) return fallback();
  if (!g_counts) return reinterpret_cast<void* (*)(Args...)>(next)(args...);
  void* result;
  {
    ScopedGuard guard;
    result = reinterpret_cast<void* (*)(Args...)>(next)(args...);
  }
  if (result != nullptr && Counting()) CountAndTraceAlloc(result, RequestedBytes(args...), UsableSize(result));
  return result;
}

template <typename... Args>
void CountedDelete(Operator op, void* pointer, Args... args) {
  void* next = Next(op);
  if (__builtin_expect(next == nullptr, false)) return free(pointer);  // counted by the free hook
  if (!g_counts) return reinterpret_cast<void (*)(void*, Args...)>(next)(pointer, args...);  // free counts
  if (pointer != nullptr && Counting()) {
    TraceFree(pointer);
    CountFree(UsableSize(pointer));
  }
  // jemalloc's operator delete calls free through the PLT: under the guard, that free is not counted again.
  // (Deletes cannot throw, so the guard is always lowered again.)
  ScopedGuard guard;
  reinterpret_cast<void (*)(void*, Args...)>(next)(pointer, args...);
}

void* MallocOrDie(size_t n) {
  void* result = malloc(n != 0 ? n : 1);
  if (result == nullptr) OutOfMemory();
  return result;
}

void* AlignedOrNull(size_t n, size_t alignment) {
  void* result = nullptr;
  return posix_memalign(&result, alignment < sizeof(void*) ? sizeof(void*) : alignment, n != 0 ? n : 1) == 0
             ? result
             : nullptr;
}

void* AlignedOrDie(size_t n, size_t alignment) {
  void* result = AlignedOrNull(n, alignment);
  if (result == nullptr) OutOfMemory();
  return result;
}

}  // namespace
}  // namespace memtide::internal

using memtide::internal::AlignedOrDie;
using memtide::internal::AlignedOrNull;
using memtide::internal::CountedDelete;
using memtide::internal::CountedNew;
using memtide::internal::CountedNewNothrow;
using memtide::internal::MallocOrDie;
namespace op = memtide::internal;

// std::nothrow_t is passed by reference and std::align_val_t as a size_t: the C signatures below are the
// operators' ABI on every Itanium-ABI platform.
MEMTIDE_EXPORT void* _Znwm(size_t n) { return CountedNew(op::kNew, op::kNewNothrow, [=] { return MallocOrDie(n); }, n); }
MEMTIDE_EXPORT void* _Znam(size_t n) {
  return CountedNew(op::kNewArray, op::kNewArrayNothrow, [=] { return MallocOrDie(n); }, n);
}
MEMTIDE_EXPORT void* _ZnwmRKSt9nothrow_t(size_t n, const void* t) {
  return CountedNewNothrow(op::kNewNothrow, [=] { return malloc(n != 0 ? n : 1); }, n, t);
}
MEMTIDE_EXPORT void* _ZnamRKSt9nothrow_t(size_t n, const void* t) {
  return CountedNewNothrow(op::kNewArrayNothrow, [=] { return malloc(n != 0 ? n : 1); }, n, t);
}
MEMTIDE_EXPORT void* _ZnwmSt11align_val_t(size_t n, size_t a) {
  return CountedNew(op::kNewAligned, op::kNewAlignedNothrow, [=] { return AlignedOrDie(n, a); }, n, a);
}
MEMTIDE_EXPORT void* _ZnamSt11align_val_t(size_t n, size_t a) {
  return CountedNew(op::kNewArrayAligned, op::kNewArrayAlignedNothrow, [=] { return AlignedOrDie(n, a); }, n, a);
}
MEMTIDE_EXPORT void* _ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void* t) {
  return CountedNewNothrow(op::kNewAlignedNothrow, [=] { return AlignedOrNull(n, a); }, n, a, t);
}
MEMTIDE_EXPORT void* _ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void* t) {
  return CountedNewNothrow(op::kNewArrayAlignedNothrow, [=] { return AlignedOrNull(n, a); }, n, a, t);
}
MEMTIDE_EXPORT void _ZdlPv(void* p) { CountedDelete(op::kDelete, p); }
MEMTIDE_EXPORT void _ZdaPv(void* p) { CountedDelete(op::kDeleteArray, p); }
MEMTIDE_EXPORT void _ZdlPvm(void* p, size_t n) { CountedDelete(op::kDeleteSized, p, n); }
MEMTIDE_EXPORT void _ZdaPvm(void* p, size_t n) { CountedDelete(op::kDeleteArraySized, p, n); }
MEMTIDE_EXPORT void _ZdlPvRKSt9nothrow_t(void* p, const void* t) { CountedDelete(op::kDeleteNothrow, p, t); }
MEMTIDE_EXPORT void _ZdaPvRKSt9nothrow_t(void* p, const void* t) { CountedDelete(op::kDeleteArrayNothrow, p, t); }
MEMTIDE_EXPORT void _ZdlPvSt11align_val_t(void* p, size_t a) { CountedDelete(op::kDeleteAligned, p, a); }
MEMTIDE_EXPORT void _ZdaPvSt11align_val_t(void* p, size_t a) { CountedDelete(op::kDeleteArrayAligned, p, a); }
MEMTIDE_EXPORT void _ZdlPvmSt11align_val_t(void* p, size_t n, size_t a) {
  CountedDelete(op::kDeleteSizedAligned, p, n, a);
}
MEMTIDE_EXPORT void _ZdaPvmSt11align_val_t(void* p, size_t n, size_t a) {
  CountedDelete(op::kDeleteArraySizedAligned, p, n, a);
}
MEMTIDE_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void* p, size_t a, const void* t) {
  CountedDelete(op::kDeleteAlignedNothrow, p, a, t);
}
MEMTIDE_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void* p, size_t a, const void* t) {
  CountedDelete(op::kDeleteArrayAlignedNothrow, p, a, t);
}
