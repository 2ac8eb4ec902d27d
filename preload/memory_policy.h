// memtide's memory policy inside the traced process: the alert level and the trims (tracer/trim_policy.h
// decides, trim_mechanism.h acts). Runs on the monitor thread each tick, and for memtide_trim() and control
// requests. Never inside a hook; under the guard.
#ifndef MEMTIDE_PRELOAD_MEMORY_POLICY_H_
#define MEMTIDE_PRELOAD_MEMORY_POLICY_H_

#include <stdint.h>

#include "options.h"
#include "proc_stats.h"
#include "trim_mechanism.h"
#include "trim_policy.h"

namespace memtide::internal {

// Constructor: thresholds from the options (and MALLOC_TRIM_THRESHOLD_ when MEMTIDE_TRIM_THRESHOLD is unset).
void ConfigureMemoryPolicy(const Options& options);
// Monitor tick: alert level from `pressure`, then a trim if the policy says so.
void UpdateMemoryPolicy(const MemoryPressure& pressure);
// Trims now and records it (segment: trims, bytes released, time). Thread-safe.
TrimResult TrimNow(TrimReason reason);
// fork() child: the parent's trim history is not the child's.
void ResetMemoryPolicyInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_MEMORY_POLICY_H_
