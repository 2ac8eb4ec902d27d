// Slow paths and readers of the heap counters (hot path: heap_counters.h).
// Called from hooks (slot acquisition, flush) and from the monitor thread / C API (readers).
// Allocation-free and lock-free; slot acquisition may call pthread_setspecific, which allocates only for
// keys past the first 32 and then under the guard, so the allocation goes uncounted.
#include "heap_counters.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

namespace memtide::internal {

__thread ThreadState tls_state __attribute__((tls_model("initial-exec")));

namespace {

struct alignas(64) SharedCurrent {
  std::atomic<int64_t> value{0};
};
struct alignas(64) SharedPeak {
  std::atomic<int64_t> value{0};
};
// Counts of threads that gave their slot back, or never had one.
struct alignas(64) RetiredCounts {
  std::atomic<int64_t> allocations{0};
  std::atomic<int64_t> frees{0};
  std::atomic<int64_t> allocated_bytes{0};
};

SharedCurrent g_current;
SharedPeak g_peak;
RetiredCounts g_retired;
ThreadSlot g_slots[kMaxThreadSlots];
std::atomic<int> g_slots_high{0};  // one past the highest slot index ever owned

std::atomic<int64_t> g_wake_below{INT64_MIN};
std::atomic<void (*)()> g_wake_handler{nullptr};
std::atomic<void (*)()> g_thread_exit_handler{nullptr};

pthread_key_t g_slot_key;
std::atomic<bool> g_slot_key_ready{false};

void RaisePeak(int64_t candidate) {
  int64_t peak = g_peak.value.load(std::memory_order_relaxed);
  while (candidate > peak &&
         !g_peak.value.compare_exchange_weak(peak, candidate, std::memory_order_relaxed)) {
  }
}

void SlotDestructor(void*) {
  if (void (*on_exit)() = g_thread_exit_handler.load(std::memory_order_acquire)) on_exit();
  ReleaseCurrentThreadSlot();
}

void EnsureSlotKey() {
  static std::atomic<bool> creating{false};
  if (g_slot_key_ready.load(std::memory_order_acquire)) return;
  if (creating.exchange(true)) return;  // another thread creates it; this thread's slot is never released
  if (pthread_key_create(&g_slot_key, SlotDestructor) == 0) {
    g_slot_key_ready.store(true, std::memory_order_release);
  }
}

bool AcquireSlot() {
  ThreadState& state = tls_state;
  int saved_errno = errno;
  ScopedGuard guard;
  EnsureSlotKey();
  for (int i = 0; i < kMaxThreadSlots; ++i) {
    uint32_t free_slot = 0;
    if (g_slots[i].owned.load(std::memory_order_relaxed) == 0 &&
        g_slots[i].owned.compare_exchange_strong(free_slot, 1, std::memory_order_acquire)) {
      int high = g_slots_high.load(std::memory_order_relaxed);
      while (high < i + 1 && !g_slots_high.compare_exchange_weak(high, i + 1, std::memory_order_relaxed)) {
      }
      state.slot = &g_slots[i];
      if (g_slot_key_ready.load(std::memory_order_acquire)) pthread_setspecific(g_slot_key, &g_slots[i]);
      errno = saved_errno;
      return true;
    }
  }
  state.direct = true;  // more live threads than slots: count with shared atomics
  errno = saved_errno;
  return false;
}

}  // namespace

void CountAllocSlow(size_t bytes) {
  if (ThreadSlot* slot = tls_state.slot) {  // a flush is due
    int64_t delta = slot->delta.load(std::memory_order_relaxed) + static_cast<int64_t>(bytes);
    slot->delta.store(delta, std::memory_order_relaxed);
    slot->delta_high.store(delta, std::memory_order_relaxed);
    Bump(slot->allocations, 1);
    Bump(slot->allocated_bytes, static_cast<int64_t>(bytes));
    return FlushSlot(slot);
  }
  if (!tls_state.direct && AcquireSlot()) return CountAlloc(bytes);
  int64_t old = g_current.value.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  RaisePeak(old + static_cast<int64_t>(bytes));
  g_retired.allocations.fetch_add(1, std::memory_order_relaxed);
  g_retired.allocated_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
}

void CountFreeSlow(size_t bytes) {
  if (ThreadSlot* slot = tls_state.slot) {  // a flush is due
    slot->delta.store(slot->delta.load(std::memory_order_relaxed) - static_cast<int64_t>(bytes),
                      std::memory_order_relaxed);
    Bump(slot->frees, 1);
    return FlushSlot(slot);
  }
  if (!tls_state.direct && AcquireSlot()) return CountFree(bytes);
  g_current.value.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  g_retired.frees.fetch_add(1, std::memory_order_relaxed);
}

void FlushSlot(ThreadSlot* slot) {
  int64_t delta = slot->delta.load(std::memory_order_relaxed);
  int64_t high = slot->delta_high.load(std::memory_order_relaxed);
  slot->delta.store(0, std::memory_order_relaxed);
  slot->delta_high.store(0, std::memory_order_relaxed);
  int64_t old = g_current.value.fetch_add(delta, std::memory_order_relaxed);
  RaisePeak(old + high);
  if (delta < 0 && MEMTIDE_PREDICT_FALSE(old + delta < g_wake_below.load(std::memory_order_relaxed)) &&
      g_wake_below.exchange(INT64_MIN, std::memory_order_relaxed) != INT64_MIN) {
    if (void (*wake)() = g_wake_handler.load(std::memory_order_acquire)) wake();
  }
}

void SetFreeWakeHandler(void (*wake)()) { g_wake_handler.store(wake, std::memory_order_release); }
void SetThreadExitHandler(void (*on_exit)()) { g_thread_exit_handler.store(on_exit, std::memory_order_release); }
void ArmFreeWake(int64_t current_below) { g_wake_below.store(current_below, std::memory_order_relaxed); }

void FlushCurrentThread() {
  if (ThreadSlot* slot = tls_state.slot) FlushSlot(slot);
}

HeapTotals ReadHeapTotals() {
  HeapTotals totals{};
  totals.current_bytes = g_current.value.load(std::memory_order_relaxed);
  totals.allocations = g_retired.allocations.load(std::memory_order_relaxed);
  totals.frees = g_retired.frees.load(std::memory_order_relaxed);
  totals.allocated_bytes_total = g_retired.allocated_bytes.load(std::memory_order_relaxed);
  int high = g_slots_high.load(std::memory_order_acquire);
  for (int i = 0; i < high; ++i) {
    const ThreadSlot& slot = g_slots[i];
    totals.current_bytes += slot.delta.load(std::memory_order_relaxed);
    totals.allocations += slot.allocations.load(std::memory_order_relaxed);
    totals.frees += slot.frees.load(std::memory_order_relaxed);
    totals.allocated_bytes_total += slot.allocated_bytes.load(std::memory_order_relaxed);
  }
  // Frees of blocks allocated before memtide was counting (or by another allocator) never make it negative.
  if (totals.current_bytes < 0) totals.current_bytes = 0;
  int64_t peak = g_peak.value.load(std::memory_order_relaxed);
  totals.peak_bytes = peak > totals.current_bytes ? peak : totals.current_bytes;
  return totals;
}

void ResetHeapPeak() {
  FlushCurrentThread();
  g_peak.value.store(ReadHeapTotals().current_bytes, std::memory_order_relaxed);
}

void ReleaseCurrentThreadSlot() {
  ThreadState& state = tls_state;
  ThreadSlot* slot = state.slot;
  if (slot == nullptr) return;
  FlushSlot(slot);
  g_retired.allocations.fetch_add(slot->allocations.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
  g_retired.frees.fetch_add(slot->frees.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
  g_retired.allocated_bytes.fetch_add(slot->allocated_bytes.exchange(0, std::memory_order_relaxed),
                                      std::memory_order_relaxed);
  state.slot = nullptr;
  state.direct = true;
  slot->owned.store(0, std::memory_order_release);
}

void ResetHeapCountersInChild() {
  HeapTotals totals = ReadHeapTotals();
  ThreadSlot* own = tls_state.slot;
  int high = g_slots_high.load(std::memory_order_relaxed);
  for (int i = 0; i < high; ++i) {
    ThreadSlot& slot = g_slots[i];
    slot.delta.store(0, std::memory_order_relaxed);
    slot.delta_high.store(0, std::memory_order_relaxed);
    slot.allocations.store(0, std::memory_order_relaxed);
    slot.frees.store(0, std::memory_order_relaxed);
    slot.allocated_bytes.store(0, std::memory_order_relaxed);
    if (&slot != own) slot.owned.store(0, std::memory_order_relaxed);
  }
  g_current.value.store(totals.current_bytes, std::memory_order_relaxed);
  g_peak.value.store(totals.current_bytes, std::memory_order_relaxed);
  g_retired.allocations.store(0, std::memory_order_relaxed);
  g_retired.frees.store(0, std::memory_order_relaxed);
  g_retired.allocated_bytes.store(0, std::memory_order_relaxed);
}

}  // namespace memtide::internal
