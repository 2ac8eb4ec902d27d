// Per-thread state of the preload: the reentrancy guard and the thread's counter slot.
// Initial-exec TLS (the preload is loaded at start-up, so its TLS is static): reading it never calls
// __tls_get_addr, which could allocate.
#ifndef MEMTIDE_PRELOAD_THREAD_STATE_H_
#define MEMTIDE_PRELOAD_THREAD_STATE_H_

#include <stdint.h>

#include "tracer_module.h"

namespace memtide::internal {

struct ThreadSlot;

struct ThreadState {
  // Nonzero while memtide's own code runs on this thread (or a hook forwards to the next allocator):
  // allocations then go straight to the next allocator, uncounted.
  uint32_t guard_depth;
  // This thread lost its slot (thread exit) or none was free: count with shared atomics instead.
  bool direct;
  ThreadSlot* slot;
  // Tracing (preload/trace_hooks.h): usable bytes left before the next traced allocation, and the tracer
  // module's words for this thread (the sampling generator, the traced bytes not yet in the shared total).
  // Zero-initialized, so a new thread's first allocation takes the slow path once, which sets the countdown
  // for the mode in force.
  int64_t trace_countdown;
  MemtideTracerThread trace_thread;
};

// __thread, not thread_local: a trivially initialized variable needs no C++ TLS wrapper call on each access.
extern __thread ThreadState tls_state __attribute__((tls_model("initial-exec")));

// RAII reentrancy guard for memtide's own work. Allocation-free, signal-safe.
class ScopedGuard {
 public:
  ScopedGuard() { ++tls_state.guard_depth; }
  ~ScopedGuard() { --tls_state.guard_depth; }
  ScopedGuard(const ScopedGuard&) = delete;
  ScopedGuard& operator=(const ScopedGuard&) = delete;
};

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_THREAD_STATE_H_
