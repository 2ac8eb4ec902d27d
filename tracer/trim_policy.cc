// See trim_policy.h. Pure: no clock, no I/O, no allocation.
#include "trim_policy.h"

#include <stdint.h>

namespace memtide {

TrimDecision DecideTrim(const TrimPolicyConfig& config, const TrimPolicyInput& input) {
  TrimDecision decision;
  // The allocator's own figure is better than ours when it has one: freed bytes the allocator already
  // reused, or could never return (a page still holding a live block), are not in it.
  decision.estimate_bytes = input.reclaimable_bytes >= 0 ? input.reclaimable_bytes : input.freed_since_trim_bytes;
  if (decision.estimate_bytes < 0) decision.estimate_bytes = 0;
  if (input.requested) {
    decision.trim = true;
    decision.reason = TrimReason::kRequested;
    return decision;
  }
  if (!config.enabled) {
    decision.reason = TrimReason::kDisabled;
    return decision;
  }
  int64_t since_last_ns = input.last_trim_ns >= 0 ? input.now_ns - input.last_trim_ns : INT64_MAX;
  // Near the limit an OOM kill costs more than any trim: only the minimum interval holds a pressure trim back.
  bool under_pressure = input.limit_bytes > 0 &&
                        input.usage_bytes * 1000 >= input.limit_bytes * config.pressure_permille;
  if (under_pressure && decision.estimate_bytes >= config.pressure_floor_bytes &&
      since_last_ns >= config.min_interval_ns) {
    decision.trim = true;
    decision.reason = TrimReason::kPressure;
    return decision;
  }
  int64_t wait_ns = config.min_interval_ns;
  if (config.max_time_share_permille > 0) {
    int64_t share_wait_ns = input.last_trim_duration_ns * 1000 / config.max_time_share_permille;
    if (share_wait_ns > wait_ns) wait_ns = share_wait_ns;
  }
  if (since_last_ns < wait_ns) {
    decision.reason = TrimReason::kTooSoon;
    return decision;
  }
  if (decision.estimate_bytes >= config.threshold_bytes && config.still_freeing_divisor > 0 &&
      input.heap_shrink_recent_bytes >= config.threshold_bytes / config.still_freeing_divisor) {
    decision.reason = TrimReason::kStillFreeing;
    return decision;
  }
  if (decision.estimate_bytes >= config.threshold_bytes) {
    decision.trim = true;
    decision.reason = TrimReason::kThreshold;
    return decision;
  }
  decision.reason = TrimReason::kBelowThreshold;
  return decision;
}

const char* TrimReasonName(TrimReason reason) {
  switch (reason) {
    case TrimReason::kNone: return "none";
    case TrimReason::kRequested: return "requested";
    case TrimReason::kThreshold: return "threshold";
    case TrimReason::kPressure: return "pressure";
    case TrimReason::kDisabled: return "disabled";
    case TrimReason::kTooSoon: return "too_soon";
    case TrimReason::kBelowThreshold: return "below_threshold";
    case TrimReason::kStillFreeing: return "still_freeing";
  }
  return "unknown";
}

}  // namespace memtide
