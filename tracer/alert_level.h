// The seed's alert levels (SEED-NOTES.md): warning above 80% of the limit in use, severe above 90%, danger
// below 50 MB available. Pure and allocation-free: the preload's monitor thread and the CLI (doctor, top)
// compute the same level from the same numbers.
#ifndef MEMTIDE_TRACER_ALERT_LEVEL_H_
#define MEMTIDE_TRACER_ALERT_LEVEL_H_

#include <stdint.h>

namespace memtide {

struct AlertThresholds {
  int64_t warning_permille = 800;
  int64_t severe_permille = 900;
  int64_t danger_available_bytes = 50000000;
};

// Returns kAlertNormal..kAlertDanger (segment.h). An unknown limit (0) is normal.
uint32_t ComputeAlertLevel(const AlertThresholds& thresholds, int64_t used_bytes, int64_t limit_bytes);
const char* AlertLevelName(uint32_t level);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_ALERT_LEVEL_H_
