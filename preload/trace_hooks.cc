// Slow paths of preload/trace_hooks.h: a thread's countdown ran out, or a free may concern a traced block.
// Run inside the program's malloc/free, under the guard; they call the tracer module (which may lock).
#include "trace_hooks.h"

#include <errno.h>

#include "tracer_loader.h"
#include "tracer_module.h"

namespace memtide::internal {

static_assert(kTraceModeFull == kMemtideTraceFull, "trace_hooks.h's mode constant follows the module's");

int32_t g_trace_mode = kMemtideTraceOff;
bool g_trace_decided = false;
uint8_t g_sample_filter[1 << kSampleFilterBits];

namespace {

constexpr uint8_t kFilterSaturated = 255;

void FilterAdd(const void* pointer) {
  uint8_t* counter = &g_sample_filter[SampleFilterIndex(pointer)];
  // A saturated counter stays saturated: its bucket then always takes the slow path (never a missed free).
  uint8_t value = __atomic_load_n(counter, __ATOMIC_RELAXED);
  while (value != kFilterSaturated &&
         !__atomic_compare_exchange_n(counter, &value, value + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

void FilterRemove(const void* pointer) {
  uint8_t* counter = &g_sample_filter[SampleFilterIndex(pointer)];
  uint8_t value = __atomic_load_n(counter, __ATOMIC_RELAXED);
  while (value != kFilterSaturated && value != 0 &&
         !__atomic_compare_exchange_n(counter, &value, value - 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

}  // namespace

__attribute__((noinline)) void TraceAllocSlow(void* pointer, size_t requested, size_t usable) {
  int32_t mode = __atomic_load_n(&g_trace_mode, __ATOMIC_ACQUIRE);
  const MemtideTracerApi* tracer = RunningTracer();
  if (mode == kMemtideTraceOff || tracer == nullptr) {
    // Before the constructor has decided, tracing may still start: keep asking (only allocations made by
    // libraries initialized before memtide pay this). Afterwards, off is final for this process image.
    tls_state.trace_countdown = __atomic_load_n(&g_trace_decided, __ATOMIC_ACQUIRE) ? INT64_MAX : 0;
    return;
  }
  ScopedGuard guard;
  // The tracer may touch errno (the loader, its own allocations); malloc and free must not.
  int saved_errno = errno;
  // After the thread's exit flush (or with no counter slot at all) nothing would flush its bytes later.
  tls_state.trace_thread.flush_always = tls_state.direct;
  int tracked = 0;
  if (mode == kMemtideTraceSample && tls_state.trace_thread.rng_state == 0) {
    // The thread's first allocation: draw its countdown and charge this block to it like any other, so the
    // first block of every thread is not sampled with certainty (that would bias the estimates).
    int64_t first = tracer->on_allocation(nullptr, 0, 0, &tls_state.trace_thread, &tracked);
    tls_state.trace_countdown = first - static_cast<int64_t>(usable);
    if (tls_state.trace_countdown >= 0) {
      errno = saved_errno;
      return;
    }
  }
  int64_t next = tracer->on_allocation(pointer, requested, usable, &tls_state.trace_thread, &tracked);
  if (tracked != 0 && mode == kMemtideTraceSample) FilterAdd(pointer);
  tls_state.trace_countdown = next;
  errno = saved_errno;
}

__attribute__((noinline)) void TraceFreeSlow(void* pointer) {
  const MemtideTracerApi* tracer = RunningTracer();
  if (tracer == nullptr) return;
  ScopedGuard guard;
  int saved_errno = errno;  // free() leaves errno alone (POSIX 2024, glibc 2.33)
  tls_state.trace_thread.flush_always = tls_state.direct;
  if (tracer->on_free(pointer, &tls_state.trace_thread) != 0 && g_trace_mode == kMemtideTraceSample) {
    FilterRemove(pointer);
  }
  errno = saved_errno;
}

void TraceThreadExit() {
  const MemtideTracerApi* tracer = RunningTracer();
  if (tracer == nullptr) return;
  ScopedGuard guard;
  int saved_errno = errno;
  tracer->on_thread_exit(&tls_state.trace_thread);
  errno = saved_errno;
}

}  // namespace memtide::internal
