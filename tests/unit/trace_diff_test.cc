// Unit tests for tracer/trace_diff.cc: growth per stack between two models, tracemalloc-style ordering,
// text (golden file) and JSON.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "trace_diff.h"

#include <doctest/doctest.h>

#include "report_render.h"
#include "report_test_models.h"

namespace memtide {
namespace {

TEST_CASE("leaks compared per stack, biggest change first") {
  TraceReport before = test::LeakyExitTrace(1);
  TraceReport after = test::LeakyExitTrace(3);
  after.path = "leaky.after.json";
  // A leak that is gone and one that is new.
  after.leaks.erase(after.leaks.begin() + 1);
  StackTotal fresh;
  fresh.stack = {test::F("Cache::Put(int)", "/src/leaky/cache.cc", 88, "leaky", 0x1900)};
  fresh.bytes = 512;
  fresh.count = 2;
  after.leaks.push_back(fresh);
  absl::StatusOr<TraceDiff> diff = CompareTraces(before, after, DiffMetric::kLive);
  REQUIRE(diff.ok());
  REQUIRE(diff->stacks.size() == 3);
  CHECK(diff->stacks[0].size_diff == 2000);
  CHECK(diff->stacks[0].size == 3000);
  CHECK(diff->stacks[0].count_diff == 20);
  CHECK(diff->stacks[1].size_diff == 512);
  CHECK(diff->stacks[1].size == 512);
  CHECK(diff->stacks[2].size_diff == -24);
  CHECK(diff->stacks[2].size == 0);
  CHECK(diff->a_bytes == 1024);
  CHECK(diff->b_bytes == 3512);
  CHECK_GOLDEN("diff_leaks.txt", RenderDiffText(*diff, 10));
  nlohmann::json json = RenderDiffJson(*diff, 2);
  CHECK(json["size_diff"] == 2488);
  CHECK(json["count_diff"] == 21);
  CHECK(json["stacks"].size() == 2);
  CHECK(json["stacks"][0]["stack"][0]["function"] == "MakeItem(int)");
  CHECK(json["a"]["kind"] == "exit");
  CHECK(json["metric"] == "live");
}

TEST_CASE("snapshots compare live sites; --peak compares the peak sites; the same file shows no change") {
  TraceReport snapshot = test::LeakySnapshot();
  absl::StatusOr<TraceDiff> same = CompareTraces(snapshot, snapshot, DiffMetric::kLive);
  REQUIRE(same.ok());
  CHECK(same->a_bytes == 2248);
  for (const StackDiff& stack : same->stacks) CHECK(stack.size_diff == 0);
  CHECK(RenderDiffText(*same, 10).find("No stack changed.") != std::string::npos);
  absl::StatusOr<TraceDiff> peak = CompareTraces(test::LeakyExitTrace(), snapshot, DiffMetric::kPeak);
  REQUIRE(peak.ok());
  CHECK(peak->b_bytes == 4000000 + 800 + 24 + 1024 + 200);
}

TEST_CASE("a report without a trace cannot be compared") {
  TraceReport untraced;
  untraced.path = "old.json";
  CHECK(CompareTraces(untraced, test::LeakyExitTrace(), DiffMetric::kLive).status().message() ==
        "old.json has no trace (the run was not traced: memtide run --leaks or --trace)");
}

}  // namespace
}  // namespace memtide
