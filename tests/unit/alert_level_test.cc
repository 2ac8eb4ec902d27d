// Unit tests for tracer/alert_level.cc: the seed's thresholds at their edges.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "alert_level.h"
#include "memtide/segment.h"

using memtide::AlertThresholds;
using memtide::ComputeAlertLevel;

TEST_CASE("levels at the seed's thresholds: > 80% warning, > 90% severe, < 50 MB available danger") {
  AlertThresholds thresholds;
  const int64_t limit = 1000000000;  // 1 GB
  CHECK(ComputeAlertLevel(thresholds, 0, limit) == memtide::kAlertNormal);
  CHECK(ComputeAlertLevel(thresholds, 800000000, limit) == memtide::kAlertNormal);
  CHECK(ComputeAlertLevel(thresholds, 800000001, limit) == memtide::kAlertWarning);
  CHECK(ComputeAlertLevel(thresholds, 900000000, limit) == memtide::kAlertWarning);
  CHECK(ComputeAlertLevel(thresholds, 900000001, limit) == memtide::kAlertSevere);
  CHECK(ComputeAlertLevel(thresholds, 950000000, limit) == memtide::kAlertSevere);
  CHECK(ComputeAlertLevel(thresholds, 950000001, limit) == memtide::kAlertDanger);
}

TEST_CASE("a small container reaches danger before severe") {
  AlertThresholds thresholds;
  const int64_t limit = 200000000;  // 200 MB: 50 MB available is only 75% used
  CHECK(ComputeAlertLevel(thresholds, 150000001, limit) == memtide::kAlertDanger);
}

TEST_CASE("configurable thresholds; unknown limit is normal") {
  AlertThresholds thresholds{500, 600, 0};
  CHECK(ComputeAlertLevel(thresholds, 55, 100) == memtide::kAlertWarning);
  CHECK(ComputeAlertLevel(thresholds, 61, 100) == memtide::kAlertSevere);
  CHECK(ComputeAlertLevel(thresholds, 1000, 0) == memtide::kAlertNormal);
  CHECK(std::string(memtide::AlertLevelName(memtide::kAlertSevere)) == "severe");
}
