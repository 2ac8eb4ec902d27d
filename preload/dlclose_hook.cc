// memtide's `dlclose`: the next dlclose, then one more in g_dlclose_calls. A library that is unloaded may
// leave its addresses to the next one loaded; the tracer module checks the count before each stack walk so
// that it drops unwind rules and module names of code that is gone before it walks or names new stacks
// (tracer/module_map.h, tracer/stack_depot.h), instead of when a new stack happens to re-read the loader.
// dlclose does not depend on its caller (unlike dlsym), so a plain wrapper keeps its meaning. Exported
// unversioned (exports.map), so references bound to dlclose@GLIBC_2.2.5 and dlclose@GLIBC_2.34 both reach it.
#include "dlclose_hook.h"

#include <atomic>

#include "real_symbols.h"

namespace memtide::internal {

uint64_t g_dlclose_calls = 0;

namespace {

using DlcloseFunction = int (*)(void*);

std::atomic<DlcloseFunction> g_real_dlclose{nullptr};

DlcloseFunction RealDlclose() {
  DlcloseFunction real = g_real_dlclose.load(std::memory_order_acquire);
  if (real != nullptr) return real;
  real = reinterpret_cast<DlcloseFunction>(NextLoaderFunction("dlclose"));
  if (real != nullptr) g_real_dlclose.store(real, std::memory_order_release);
  return real;
}

}  // namespace
}  // namespace memtide::internal

extern "C" __attribute__((visibility("default"))) int dlclose(void* handle) {
  using memtide::internal::g_dlclose_calls;
  const memtide::internal::DlcloseFunction real = memtide::internal::RealDlclose();
  if (real == nullptr) {
    // No dlclose past memtide (glibc < 2.34 keeps it in libdl, which the program then never loaded, so it
    // reached this one through dlsym): the library stays loaded, and dlclose reports a failure.
    return -1;
  }
  const int result = real(handle);
  if (result == 0) __atomic_add_fetch(&g_dlclose_calls, 1, __ATOMIC_RELAXED);
  return result;
}
