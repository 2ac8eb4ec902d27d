// Unit tests for tracer/trim_policy.cc, driven with fake time.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "trim_policy.h"

using memtide::DecideTrim;
using memtide::TrimPolicyConfig;
using memtide::TrimPolicyInput;
using memtide::TrimReason;

namespace {
constexpr int64_t kSecond = 1000000000;
constexpr int64_t kMiB = 1 << 20;
}  // namespace

TEST_CASE("below the threshold nothing happens; at it, a trim") {
  TrimPolicyConfig config;
  config.threshold_bytes = 10 * kMiB;
  TrimPolicyInput input;
  input.now_ns = 5 * kSecond;
  input.freed_since_trim_bytes = 10 * kMiB - 1;
  CHECK(DecideTrim(config, input).reason == TrimReason::kBelowThreshold);
  CHECK_FALSE(DecideTrim(config, input).trim);
  input.freed_since_trim_bytes = 10 * kMiB;
  auto decision = DecideTrim(config, input);
  CHECK(decision.trim);
  CHECK(decision.reason == TrimReason::kThreshold);
  CHECK(decision.estimate_bytes == 10 * kMiB);
}

TEST_CASE("the allocator's reclaimable figure wins over memtide's freed bytes") {
  TrimPolicyConfig config;
  config.threshold_bytes = 10 * kMiB;
  TrimPolicyInput input;
  input.freed_since_trim_bytes = 500 * kMiB;  // churn the allocator already reused
  input.reclaimable_bytes = 1 * kMiB;
  CHECK_FALSE(DecideTrim(config, input).trim);
  input.reclaimable_bytes = 12 * kMiB;
  input.freed_since_trim_bytes = 0;
  CHECK(DecideTrim(config, input).trim);
}

TEST_CASE("the minimum interval holds back policy trims, not requested ones") {
  TrimPolicyConfig config;
  config.threshold_bytes = kMiB;
  config.min_interval_ns = 2 * kSecond;
  TrimPolicyInput input;
  input.freed_since_trim_bytes = 100 * kMiB;
  input.last_trim_ns = 10 * kSecond;
  input.now_ns = 11 * kSecond;
  CHECK(DecideTrim(config, input).reason == TrimReason::kTooSoon);
  input.requested = true;
  CHECK(DecideTrim(config, input).reason == TrimReason::kRequested);
  input.requested = false;
  input.now_ns = 12 * kSecond;
  CHECK(DecideTrim(config, input).reason == TrimReason::kThreshold);
}

TEST_CASE("under container pressure a small reclaimable amount is enough") {
  TrimPolicyConfig config;
  config.threshold_bytes = 64 * kMiB;
  config.pressure_permille = 800;
  config.pressure_floor_bytes = kMiB;
  TrimPolicyInput input;
  input.now_ns = kSecond;
  input.freed_since_trim_bytes = 2 * kMiB;
  input.limit_bytes = 512 * kMiB;
  input.usage_bytes = 409 * kMiB;  // 79.9%
  CHECK(DecideTrim(config, input).reason == TrimReason::kBelowThreshold);
  input.usage_bytes = 410 * kMiB;  // 80.1%
  CHECK(DecideTrim(config, input).reason == TrimReason::kPressure);
  input.freed_since_trim_bytes = kMiB - 1;  // nothing worth the trouble even under pressure
  CHECK_FALSE(DecideTrim(config, input).trim);
  input.limit_bytes = 0;  // unknown limit: no pressure
  input.freed_since_trim_bytes = 2 * kMiB;
  CHECK_FALSE(DecideTrim(config, input).trim);
}

TEST_CASE("disabled: only explicit requests trim") {
  TrimPolicyConfig config;
  config.enabled = false;
  TrimPolicyInput input;
  input.freed_since_trim_bytes = 1LL << 40;
  CHECK(DecideTrim(config, input).reason == TrimReason::kDisabled);
  input.requested = true;
  CHECK(DecideTrim(config, input).trim);
}

TEST_CASE("reason names are stable") {
  CHECK(std::string(memtide::TrimReasonName(TrimReason::kPressure)) == "pressure");
  CHECK(std::string(memtide::TrimReasonName(TrimReason::kTooSoon)) == "too_soon");
}

TEST_CASE("a slow trim spaces out the next policy trim to keep its share of wall time") {
  TrimPolicyConfig config;
  config.threshold_bytes = kMiB;
  config.min_interval_ns = kSecond;
  config.max_time_share_permille = 50;  // 5%
  TrimPolicyInput input;
  input.freed_since_trim_bytes = 100 * kMiB;
  input.last_trim_ns = 0;
  input.last_trim_duration_ns = 2 * kSecond;  // => wait 40 s
  input.now_ns = 39 * kSecond;
  CHECK(DecideTrim(config, input).reason == TrimReason::kTooSoon);
  input.now_ns = 40 * kSecond;
  CHECK(DecideTrim(config, input).reason == TrimReason::kThreshold);
  input.last_trim_duration_ns = 10000000;  // 10 ms => the minimum interval rules
  input.now_ns = kSecond;
  CHECK(DecideTrim(config, input).reason == TrimReason::kThreshold);
}

TEST_CASE("mid free-heavy phase the policy waits for the phase to end; pressure does not wait") {
  TrimPolicyConfig config;
  config.threshold_bytes = 8 * kMiB;
  TrimPolicyInput input;
  input.now_ns = 10 * kSecond;
  input.freed_since_trim_bytes = 300 * kMiB;
  input.heap_shrink_recent_bytes = 50 * kMiB;
  CHECK(DecideTrim(config, input).reason == TrimReason::kStillFreeing);
  input.heap_shrink_recent_bytes = 2 * kMiB - 1;  // below threshold / 4: the phase is over
  CHECK(DecideTrim(config, input).reason == TrimReason::kThreshold);
  input.heap_shrink_recent_bytes = 50 * kMiB;
  input.limit_bytes = 100 * kMiB;
  input.usage_bytes = 90 * kMiB;
  CHECK(DecideTrim(config, input).reason == TrimReason::kPressure);
  CHECK(std::string(memtide::TrimReasonName(TrimReason::kStillFreeing)) == "still_freeing");
}

TEST_CASE("near the limit the time-share wait does not hold a trim back; the minimum interval does") {
  TrimPolicyConfig config;
  config.threshold_bytes = 8 * kMiB;
  config.min_interval_ns = kSecond;
  TrimPolicyInput input;
  input.freed_since_trim_bytes = 100 * kMiB;
  input.last_trim_ns = 0;
  input.last_trim_duration_ns = kSecond;  // threshold trims would wait 20 s
  input.limit_bytes = 512 * kMiB;
  input.usage_bytes = 430 * kMiB;
  input.now_ns = kSecond / 2;
  CHECK(DecideTrim(config, input).reason == TrimReason::kTooSoon);
  input.now_ns = 2 * kSecond;
  CHECK(DecideTrim(config, input).reason == TrimReason::kPressure);
  input.usage_bytes = 100 * kMiB;
  CHECK(DecideTrim(config, input).reason == TrimReason::kTooSoon);
}
