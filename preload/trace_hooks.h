// The tracing half of the hot path (DESIGN.md decisions 3 and 7). Every counted allocation and free passes
// here; with tracing off that costs a thread-local subtraction and one predicted-false branch per allocation,
// and one relaxed load and a predicted-false branch per free.
//
// Allocation: each thread counts usable bytes down to its next traced allocation. Off: the countdown is
// INT64_MAX after a thread's first allocation. Sample: a geometric draw (mean MEMTIDE_TRACE_SAMPLE) made by
// the tracer module. Full: 0, so every allocation is traced.
// Free: in full mode every free is offered to the module; in sample mode only those whose address hits a
// counting filter of sampled addresses (no false negatives: an address enters the filter before malloc
// returns it and leaves it only when the module confirms it was traced).
//
// Hot functions here are inline, allocation- and lock-free. The *Slow functions run under the guard and call
// into the tracer module, which may take its own short locks.
#ifndef MEMTIDE_PRELOAD_TRACE_HOOKS_H_
#define MEMTIDE_PRELOAD_TRACE_HOOKS_H_

#include <stddef.h>
#include <stdint.h>

#include "heap_counters.h"
#include "thread_state.h"

namespace memtide::internal {

// kMemtideTraceOff/Sample/Full (tracer/tracer_module.h). Written once the module has started (release),
// read relaxed on the hot path.
extern int32_t g_trace_mode;
inline constexpr int32_t kTraceModeFull = 2;  // kMemtideTraceFull (tracer/tracer_module.h, kept out of the hot header)
// Set (release) once the constructor has started tracing or left it off.
extern bool g_trace_decided;

inline constexpr int kSampleFilterBits = 16;
extern uint8_t g_sample_filter[1 << kSampleFilterBits];

inline size_t SampleFilterIndex(const void* pointer) {
  // Blocks are at least 16-byte aligned; Fibonacci hashing spreads neighbouring blocks over the table.
  return static_cast<size_t>(((reinterpret_cast<uintptr_t>(pointer) >> 4) * 0x9e3779b97f4a7c15ull) >>
                             (64 - kSampleFilterBits));
}

void TraceAllocSlow(void* pointer, size_t requested, size_t usable);
void TraceFreeSlow(void* pointer);
// The calling thread ends: its traced bytes not yet in the module's shared total go there. Allocations and
// frees the thread still makes afterwards (other TLS destructors) go there at once.
void TraceThreadExit();

inline void TraceAlloc(void* pointer, size_t requested, size_t usable) {
  int64_t left = tls_state.trace_countdown - static_cast<int64_t>(usable);
  tls_state.trace_countdown = left;
  if (MEMTIDE_PREDICT_FALSE(left < 0)) TraceAllocSlow(pointer, requested, usable);
}

// Whether the module may hold this block: every block in full mode, a filter hit in sample mode.
inline bool TracerMayHold(const void* pointer) {
  int32_t mode = __atomic_load_n(&g_trace_mode, __ATOMIC_RELAXED);
  if (MEMTIDE_PREDICT_TRUE(mode == 0)) return false;
  return mode == kTraceModeFull || __atomic_load_n(&g_sample_filter[SampleFilterIndex(pointer)], __ATOMIC_RELAXED) != 0;
}

// Before the real free (the address must not be reused while the module still holds it).
inline void TraceFree(void* pointer) {
  if (MEMTIDE_PREDICT_FALSE(TracerMayHold(pointer))) TraceFreeSlow(pointer);
}

// Counts and traces one new block.
inline void CountAndTraceAlloc(void* pointer, size_t requested, size_t usable) {
  CountAlloc(usable);
  TraceAlloc(pointer, requested, usable);
}

// The common case of CountAndTraceAlloc, all or nothing (heap_counters.h, TryCountAlloc): false, with
// nothing written, when the block is to be traced or the count needs its slow path.
inline bool TryCountUntracedAlloc(size_t usable) {
  int64_t left = tls_state.trace_countdown - static_cast<int64_t>(usable);
  if (MEMTIDE_PREDICT_FALSE(left < 0) || !TryCountAlloc(usable)) return false;
  tls_state.trace_countdown = left;
  return true;
}

// The common case of a free's accounting, all or nothing: false, with nothing written, when the tracer may
// hold the block or the count needs its slow path.
inline bool TryCountUntracedFree(const void* pointer, size_t usable) {
  return !TracerMayHold(pointer) && TryCountFree(usable);
}

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_TRACE_HOOKS_H_
