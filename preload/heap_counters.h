// Hot-path heap accounting: every counted malloc/free ends here (DESIGN.md decision 3).
//
// Each thread owns a cache-line-sized slot of relaxed atomics that only it writes; readers (the monitor
// thread, the C API) sum the global counters and all slots. A thread publishes its byte delta to the global
// `current` only when the delta leaves [-kFlushBytes, kFlushBytes], and then raises the global peak with a
// CAS-max to (global value before the flush + the highest delta seen since the last flush). For one thread
// this makes the peak exact; with T threads each one's unpublished delta can hide at most kFlushBytes, so the
// reported peak is within T * kFlushBytes of the true one (README, "Exactness").
//
// Hot path: no locks, no allocation, no syscalls. Slow paths (first use on a thread, flush) are noinline.
#ifndef MEMTIDE_PRELOAD_HEAP_COUNTERS_H_
#define MEMTIDE_PRELOAD_HEAP_COUNTERS_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "thread_state.h"

#define MEMTIDE_PREDICT_FALSE(x) (__builtin_expect(false || (x), false))
#define MEMTIDE_PREDICT_TRUE(x) (__builtin_expect(false || (x), true))

namespace memtide::internal {

inline constexpr int64_t kFlushBytes = 256 * 1024;
inline constexpr int kMaxThreadSlots = 1024;

// Written by one thread (its owner) with relaxed stores; read by anyone with relaxed loads.
struct alignas(64) ThreadSlot {
  std::atomic<int64_t> delta;       // bytes not yet added to the global current
  std::atomic<int64_t> delta_high;  // highest `delta` since the last flush
  std::atomic<int64_t> allocations;
  std::atomic<int64_t> frees;
  std::atomic<int64_t> allocated_bytes;
  std::atomic<uint32_t> owned;
};

struct HeapTotals {
  int64_t current_bytes;
  int64_t peak_bytes;
  int64_t allocations;
  int64_t frees;
  int64_t allocated_bytes_total;
};

void CountAllocSlow(size_t bytes);
void CountFreeSlow(size_t bytes);
void FlushSlot(ThreadSlot* slot);

inline void Bump(std::atomic<int64_t>& field, int64_t by) {
  field.store(field.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// The common case, all or nothing: false, with nothing written, when the thread has no slot or a flush is due;
// the *Slow functions then do the whole count. Apart, so that the malloc and free hooks can keep every call
// but the real one out of line (heap_counters.cc).
inline bool TryCountAlloc(size_t bytes) {
  ThreadSlot* slot = tls_state.slot;
  if (MEMTIDE_PREDICT_FALSE(slot == nullptr)) return false;
  int64_t delta = slot->delta.load(std::memory_order_relaxed) + static_cast<int64_t>(bytes);
  int64_t high = slot->delta_high.load(std::memory_order_relaxed);
  if (delta > high) {
    if (MEMTIDE_PREDICT_FALSE(delta > kFlushBytes)) return false;
    slot->delta_high.store(delta, std::memory_order_relaxed);
  }
  slot->delta.store(delta, std::memory_order_relaxed);
  Bump(slot->allocations, 1);
  Bump(slot->allocated_bytes, static_cast<int64_t>(bytes));
  return true;
}

inline bool TryCountFree(size_t bytes) {
  ThreadSlot* slot = tls_state.slot;
  if (MEMTIDE_PREDICT_FALSE(slot == nullptr)) return false;
  int64_t delta = slot->delta.load(std::memory_order_relaxed) - static_cast<int64_t>(bytes);
  if (MEMTIDE_PREDICT_FALSE(delta < -kFlushBytes)) return false;
  slot->delta.store(delta, std::memory_order_relaxed);
  Bump(slot->frees, 1);
  return true;
}

inline void CountAlloc(size_t bytes) {
  if (MEMTIDE_PREDICT_FALSE(!TryCountAlloc(bytes))) CountAllocSlow(bytes);
}

inline void CountFree(size_t bytes) {
  if (MEMTIDE_PREDICT_FALSE(!TryCountFree(bytes))) CountFreeSlow(bytes);
}

// Publishes the calling thread's delta (so its own work is exact in what follows).
void FlushCurrentThread();
// Process-wide totals: globals plus every slot. Exact when no other thread is allocating concurrently.
HeapTotals ReadHeapTotals();
void ResetHeapPeak();
// Thread exit: fold the slot into the globals and give it back; later work on this thread counts directly.
void ReleaseCurrentThreadSlot();
// fork() child: only the calling thread survives. Current is inherited, peak = current, counts restart.
void ResetHeapCountersInChild();

// A free-heavy phase wakes the monitor early (a trim may be due) rather than at its next tick: the first
// flush that takes the global current below `current_below` calls `wake` once, then disarms. Checked only on
// the flush slow path. `wake` must be async-signal-safe and preserve errno.
void SetFreeWakeHandler(void (*wake)());
// Called on a thread's way out, before its slot is given back (the tracer adds the thread's unflushed traced
// bytes to its shared total). Runs under no guard; must preserve errno.
void SetThreadExitHandler(void (*on_exit)());
void ArmFreeWake(int64_t current_below);

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_HEAP_COUNTERS_H_
