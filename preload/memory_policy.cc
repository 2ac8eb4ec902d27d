// See memory_policy.h. Monitor thread, memtide_trim() and control requests.
#include "memory_policy.h"

#include <pthread.h>
#include <stdlib.h>

#include "alert_level.h"
#include "allocator_name.h"
#include "heap_counters.h"
#include "lifecycle.h"
#include "log.h"
#include "memtide/segment.h"
#include "segment_writer.h"
#include "thread_state.h"

namespace memtide::internal {
namespace {

TrimPolicyConfig g_config;
AlertThresholds g_alert_thresholds;
uint32_t g_threshold_source = kThresholdDefault;

// One trim at a time; guards the trim history below.
pthread_mutex_t g_trim_mutex = PTHREAD_MUTEX_INITIALIZER;
int64_t g_last_trim_ns = -1;
int64_t g_last_trim_duration_ns = 0;
int64_t g_heap_high_since_trim = 0;      // the live heap's highest sampled value since the last trim
int64_t g_glibc_free_after_trim = 0;      // glibc's free chunk bytes right after the last trim
uint32_t g_alert_level = kAlertNormal;    // monitor thread only
int64_t g_current_at_last_tick = -1;      // monitor thread only

constexpr double kMiB = 1024.0 * 1024.0;

// What a trim could give back by the allocator's own figure, relative to what the last trim left (glibc keeps
// counting returned pages as free chunks); -1 when the allocator cannot tell.
int64_t Reclaimable(int64_t free_bytes, uint32_t allocator) {
  if (free_bytes < 0) return -1;
  if (allocator != kAllocatorGlibc) return free_bytes;
  return free_bytes > g_glibc_free_after_trim ? free_bytes - g_glibc_free_after_trim : 0;
}

void UpdateAlertLevel(const MemoryPressure& pressure) {
  uint32_t level = ComputeAlertLevel(g_alert_thresholds, pressure.used_bytes, pressure.limit_bytes);
  LockPublishing();
  SegmentMemoryPolicy& policy = PolicyState();
  policy.pressure_used_bytes = pressure.used_bytes;
  policy.pressure_limit_bytes = pressure.limit_bytes;
  bool changed = level != g_alert_level;
  if (changed) {
    g_alert_level = level;
    policy.alert_level = level;
    ++policy.alert_entries[level];
  }
  UnlockPublishing();
  if (changed && pressure.limit_bytes > 0) {
    Log("alert level {}: {:.1f} MiB of {:.1f} MiB in use ({:.1f}%, {}), {:.1f} MiB available", AlertLevelName(level),
        pressure.used_bytes / kMiB, pressure.limit_bytes / kMiB,
        100.0 * static_cast<double>(pressure.used_bytes) / static_cast<double>(pressure.limit_bytes),
        pressure.from_cgroup ? "container limit" : "host memory", pressure.available_bytes / kMiB);
  }
}

}  // namespace

void ConfigureMemoryPolicy(const Options& options) {
  g_config.enabled = options.trim != 0;
  g_config.threshold_bytes = options.trim_threshold;
  g_config.min_interval_ns = options.trim_interval_ms * 1000000;
  g_config.pressure_permille = options.pressure_permille;
  g_config.pressure_floor_bytes = options.trim_threshold < (256 << 10) ? options.trim_threshold : (256 << 10);
  g_threshold_source = getenv("MEMTIDE_TRIM_THRESHOLD") != nullptr ? kThresholdMemtide : kThresholdDefault;
  // glibc's own knob means the same thing: honour it when memtide's is not set, and say so.
  const char* glibc_threshold = getenv("MALLOC_TRIM_THRESHOLD_");
  int64_t bytes = 0;
  if (g_threshold_source == kThresholdDefault && glibc_threshold != nullptr) {
    if (ParseSize(glibc_threshold, &bytes) && bytes > 0) {
      g_config.threshold_bytes = bytes;
      g_config.pressure_floor_bytes = bytes < (256 << 10) ? bytes : (256 << 10);
      g_threshold_source = kThresholdGlibc;
      LogVerbose("trim threshold {} bytes from MALLOC_TRIM_THRESHOLD_", bytes);
    } else {
      Log("MALLOC_TRIM_THRESHOLD_='{:.64}' is not a size; memtide keeps its trim threshold of {} bytes",
          glibc_threshold, g_config.threshold_bytes);
    }
  }
  g_alert_thresholds.warning_permille = options.alert_warning_permille;
  g_alert_thresholds.severe_permille = options.alert_severe_permille;
  g_alert_thresholds.danger_available_bytes = options.alert_danger_bytes;
  LockPublishing();
  PolicyState().trim_threshold_bytes = g_config.threshold_bytes;
  PolicyState().threshold_source = g_threshold_source;
  PolicyState().allocator_free_bytes = -1;
  UnlockPublishing();
}

TrimResult TrimNow(TrimReason reason) {
  ScopedGuard guard;
  uint32_t allocator = DetectAllocator();
  pthread_mutex_lock(&g_trim_mutex);
  TrimResult result = TrimAllocator();
  g_last_trim_ns = MonotonicNs();
  g_last_trim_duration_ns = result.duration_ns;
  g_heap_high_since_trim = ReadHeapTotals().current_bytes;
  int64_t free_after = AllocatorFreeBytes();
  if (allocator == kAllocatorGlibc && free_after >= 0) g_glibc_free_after_trim = free_after;
  pthread_mutex_unlock(&g_trim_mutex);

  int64_t released = result.rss_before_bytes - result.rss_after_bytes;
  LockPublishing();
  SegmentMemoryPolicy& policy = PolicyState();
  policy.allocator = allocator;
  if (result.supported) {
    ++policy.trims;
    policy.trim_released_bytes += released > 0 ? released : 0;
    policy.trim_ns += result.duration_ns;
    policy.last_trim_reason = static_cast<uint32_t>(reason);
    policy.last_trim_rss_before_bytes = result.rss_before_bytes;
    policy.last_trim_rss_after_bytes = result.rss_after_bytes;
  }
  policy.allocator_free_bytes = free_after;
  UnlockPublishing();
  LogVerbose("trim ({}, {}): RSS {:.1f} -> {:.1f} MiB in {:.2f} ms", TrimReasonName(reason), AllocatorName(allocator),
             result.rss_before_bytes / kMiB, result.rss_after_bytes / kMiB, result.duration_ns / 1e6);
  return result;
}

void UpdateMemoryPolicy(const MemoryPressure& pressure) {
  UpdateAlertLevel(pressure);
  uint32_t allocator = DetectAllocator();
  TrimPolicyInput input;
  input.now_ns = MonotonicNs();
  int64_t current = ReadHeapTotals().current_bytes;
  pthread_mutex_lock(&g_trim_mutex);
  input.last_trim_ns = g_last_trim_ns;
  input.last_trim_duration_ns = g_last_trim_duration_ns;
  // Net shrink of the live heap since its high point after the last trim: what could have become
  // reclaimable. Churn (allocating and freeing the same sizes) does not count: the allocator reuses it.
  if (current > g_heap_high_since_trim) g_heap_high_since_trim = current;
  input.freed_since_trim_bytes = g_heap_high_since_trim - current;
  pthread_mutex_unlock(&g_trim_mutex);
  input.usage_bytes = pressure.used_bytes;
  input.limit_bytes = pressure.limit_bytes;
  if (g_current_at_last_tick >= 0) input.heap_shrink_recent_bytes = g_current_at_last_tick - current;
  g_current_at_last_tick = current;
  // Asking the allocator walks its free lists (glibc's mallinfo2 takes each arena's lock): only when memtide's
  // own counters say enough was freed for any trim to be possible.
  if (g_config.enabled && allocator != kAllocatorMimalloc &&
      input.freed_since_trim_bytes >= g_config.pressure_floor_bytes) {
    int64_t free_bytes = AllocatorFreeBytes();
    input.reclaimable_bytes = Reclaimable(free_bytes, allocator);
    LockPublishing();
    PolicyState().allocator = allocator;
    PolicyState().allocator_free_bytes = free_bytes;
    UnlockPublishing();
  }
  TrimDecision decision = DecideTrim(g_config, input);
  // mi_collect() collects only the calling thread's heap: from the monitor thread it returns nothing of the
  // program's (memtide run --allocator mimalloc configures mimalloc's own eager decommit instead).
  if (allocator == kAllocatorMimalloc && decision.reason != TrimReason::kRequested) decision.trim = false;
  // Tell the free path when to wake the monitor early: once the heap has shrunk by a threshold's worth.
  ArmFreeWake(current - g_config.threshold_bytes);
  if (decision.trim) TrimNow(decision.reason);
}

void ResetMemoryPolicyInChild() {
  pthread_mutex_init(&g_trim_mutex, nullptr);
  g_last_trim_ns = -1;
  g_last_trim_duration_ns = 0;
  g_heap_high_since_trim = 0;
  g_glibc_free_after_trim = 0;
  g_alert_level = kAlertNormal;
  g_current_at_last_tick = -1;
}

}  // namespace memtide::internal
