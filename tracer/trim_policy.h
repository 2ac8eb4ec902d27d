// When to give freed memory back to the OS: a pure function of the process's numbers and the time, so it can
// be unit-tested with fake time (DESIGN.md decision 5). Dependency-free and allocation-free: the always-loaded
// preload calls it from its monitor thread.
#ifndef MEMTIDE_TRACER_TRIM_POLICY_H_
#define MEMTIDE_TRACER_TRIM_POLICY_H_

#include <stdint.h>

namespace memtide {

struct TrimPolicyConfig {
  bool enabled = true;
  int64_t threshold_bytes = 8 << 20;     // reclaimable bytes that justify a trim (MALLOC_TRIM_THRESHOLD_'s meaning)
  int64_t min_interval_ns = 1000000000;  // at most one policy trim per interval
  int64_t pressure_permille = 800;       // container usage at or above this share of its limit: trim early
  int64_t pressure_floor_bytes = 256 << 10;  // under pressure, trim once this much is reclaimable
  // A trim holds the allocator's locks while it walks the free lists (glibc: each arena's mutex, one madvise
  // per free chunk), which on a fragmented heap of hundreds of MB takes seconds. Threshold trims therefore
  // keep to this share of wall time: after a trim of T, the next waits at least T * 1000 / share.
  // Pressure trims wait only for min_interval_ns.
  int64_t max_time_share_permille = 50;
  // The right moment is the end of a free-heavy phase: a trim in the middle of one fights the program for the
  // allocator's locks and misses what it frees next. While the heap shrinks by more than threshold/divisor
  // per tick, policy trims wait (pressure trims do not).
  int64_t still_freeing_divisor = 4;
};

struct TrimPolicyInput {
  int64_t now_ns = 0;
  int64_t last_trim_ns = -1;           // -1: never trimmed
  int64_t last_trim_duration_ns = 0;
  int64_t freed_since_trim_bytes = 0;  // heap bytes freed since the last trim (memtide's own counters)
  int64_t heap_shrink_recent_bytes = 0;  // how much the live heap shrank over the last monitor tick
  int64_t reclaimable_bytes = -1;      // what the allocator says a trim could return; -1: it cannot tell
  int64_t usage_bytes = 0;             // the container's (or host's) memory in use
  int64_t limit_bytes = 0;             // the container's limit, or the host's memory; 0: unknown
  bool requested = false;              // memtide_trim(), `memtide trim PID`
};

// Reason codes are stable: they appear in the segment (SegmentMemoryPolicy::last_trim_reason) and reports.
enum class TrimReason : uint32_t {
  kNone = 0,            // nothing decided yet
  kRequested = 1,       // asked for explicitly: always trims
  kThreshold = 2,       // reclaimable memory reached the threshold
  kPressure = 3,        // the container is near its limit
  kDisabled = 4,        // MEMTIDE_TRIM=0
  kTooSoon = 5,         // within the minimum interval of the last trim
  kBelowThreshold = 6,  // not enough to give back
  kStillFreeing = 7,    // the heap is still shrinking fast: trim when the free-heavy phase is over
};

struct TrimDecision {
  bool trim = false;
  TrimReason reason = TrimReason::kNone;
  int64_t estimate_bytes = 0;  // the reclaimable estimate the decision used
};

TrimDecision DecideTrim(const TrimPolicyConfig& config, const TrimPolicyInput& input);
const char* TrimReasonName(TrimReason reason);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_TRIM_POLICY_H_
