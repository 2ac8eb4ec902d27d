// See alert_level.h.
#include "alert_level.h"

#include "memtide/segment.h"

namespace memtide {

uint32_t ComputeAlertLevel(const AlertThresholds& thresholds, int64_t used_bytes, int64_t limit_bytes) {
  if (limit_bytes <= 0) return kAlertNormal;
  if (limit_bytes - used_bytes < thresholds.danger_available_bytes) return kAlertDanger;
  // Strictly above, as the seed words it ("usage > 80%").
  if (used_bytes * 1000 > limit_bytes * thresholds.severe_permille) return kAlertSevere;
  if (used_bytes * 1000 > limit_bytes * thresholds.warning_permille) return kAlertWarning;
  return kAlertNormal;
}

const char* AlertLevelName(uint32_t level) {
  switch (level) {
    case kAlertNormal: return "normal";
    case kAlertWarning: return "warning";
    case kAlertSevere: return "severe";
    case kAlertDanger: return "danger";
  }
  return "unknown";
}

}  // namespace memtide
