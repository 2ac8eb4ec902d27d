// The exported C API (include/memtide/memtide.h). Called by the program from any thread, outside hooks.
// Each entry runs under the guard (nothing it does is counted) and never fails the caller.
#include "memtide/memtide.h"

#include <errno.h>

#include "memtide/segment.h"

#include "cuda_driver_hooks.h"
#include "gpu_accounting.h"
#include "heap_counters.h"
#include "lifecycle.h"
#include "memory_policy.h"
#include "mmap_accounting.h"
#include "monitor_thread.h"
#include "segment_writer.h"
#include "thread_state.h"
#include "tracer_loader.h"

using memtide::internal::FlushCurrentThread;
using memtide::internal::HeapTotals;
using memtide::internal::ReadHeapTotals;
using memtide::internal::ScopedGuard;

extern "C" {

void memtide_get_traced_memory(size_t* current, size_t* peak) {
  ScopedGuard guard;
  FlushCurrentThread();
  HeapTotals totals = ReadHeapTotals();
  if (current != nullptr) *current = static_cast<size_t>(totals.current_bytes);
  if (peak != nullptr) *peak = static_cast<size_t>(totals.peak_bytes);
}

void memtide_reset_peak(void) {
  ScopedGuard guard;
  memtide::internal::ResetHeapPeak();
  memtide::internal::ResetMmapPeak();
  memtide::internal::GpuResetPeaks();
}

int memtide_get_gpu_traced_memory(int device, size_t* current, size_t* peak) {
  ScopedGuard guard;
  memtide_gpu_stats stats;
  int status = memtide::internal::ReadGpuStats(device, &stats);
  if (current != nullptr) *current = static_cast<size_t>(stats.current_bytes);
  if (peak != nullptr) *peak = static_cast<size_t>(stats.peak_bytes);
  return status;
}

int memtide_get_gpu_stats(int device, struct memtide_gpu_stats* out) {
  ScopedGuard guard;
  memtide_gpu_stats stats;
  int status = memtide::internal::ReadGpuStats(device, &stats);
  if (out != nullptr) *out = stats;
  return status;
}

void memtide_mark(const char* label) {
  ScopedGuard guard;
  FlushCurrentThread();
  // A segment this mark creates before the monitor's first tick would show the process with no RSS and no
  // cgroup (`memtide top` read "cgroup: none" for it): sample first, as the exit path does.
  if (!memtide::internal::SegmentExists()) memtide::internal::SampleProcessStats();
  memtide::internal::LockPublishing();
  memtide::internal::RecordMark(label);
  // A mark is a checkpoint someone may need after a crash: publish it now, creating the segment if the
  // monitor has not yet.
  if (memtide::internal::CreateSegment(memtide::internal::RuntimeOptions().dir.text)) {
    memtide::internal::PublishSegment(memtide::kSegmentStateRunning, -1);
  }
  memtide::internal::UnlockPublishing();
}

int64_t memtide_trim(void) {
  ScopedGuard guard;
  memtide::internal::TrimResult result = memtide::internal::TrimNow(memtide::TrimReason::kRequested);
  if (!result.supported) return -1;
  int64_t released = result.rss_before_bytes - result.rss_after_bytes;
  return released > 0 ? released : 0;
}

void memtide_get_heap_stats(struct memtide_heap_stats* out) {
  if (out == nullptr) return;
  ScopedGuard guard;
  FlushCurrentThread();
  HeapTotals heap = ReadHeapTotals();
  memtide::internal::MmapTotals mapped = memtide::internal::ReadMmapTotals();
  out->current_bytes = static_cast<uint64_t>(heap.current_bytes);
  out->peak_bytes = static_cast<uint64_t>(heap.peak_bytes);
  out->allocations = static_cast<uint64_t>(heap.allocations);
  out->frees = static_cast<uint64_t>(heap.frees);
  out->allocated_bytes_total = static_cast<uint64_t>(heap.allocated_bytes_total);
  out->mmap_current_bytes = static_cast<uint64_t>(mapped.current_bytes);
  out->mmap_peak_bytes = static_cast<uint64_t>(mapped.peak_bytes);
}

int memtide_snapshot(const char* path) {
  if (path == nullptr || path[0] == '\0') return EINVAL;
  ScopedGuard guard;
  // The errno value is the whole answer: the caller decides whether a failure is worth a line.
  char message[256];
  return memtide::internal::TracerSnapshot(path, nullptr, 0, message, sizeof(message));
}

}  // extern "C"
