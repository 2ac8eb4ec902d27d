// Unit tests for tracer/report_render.cc: text, JSON and folded stacks of already-symbolized models, compared
// with golden files (tests/unit/golden/report_*; MEMTIDE_UPDATE_GOLDEN=1 rewrites them), plus
// LeakSummaryText on a raw trace.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "report_render.h"

#include <doctest/doctest.h>

#include "leak_summary.h"
#include "report_test_models.h"

namespace memtide {
namespace {

using test::LeakyExitTrace;
using test::LeakySnapshot;

TEST_CASE("numbers") {
  CHECK(Blocks(1) == "1 block");
  CHECK(Blocks(1000) == "1,000 blocks");
}

TEST_CASE("frames") {
  Frame frame = test::F("MakeItem(int)", "/src/items.cc", 12, "leaky", 0x11a5);
  CHECK(FrameText(frame, 0) == "#0 MakeItem(int) /src/items.cc:12 (leaky)");
  frame.file.clear();
  CHECK(FrameText(frame, 3) == "#3 MakeItem(int) (leaky+0x11a5)");
  CHECK(FrameText(Symbolizer::Unknown(0x7f00), 1) == "#1 ?? (0x7f00)");
}

TEST_CASE("exit trace: text") {
  TraceReport report = LeakyExitTrace();
  CHECK_GOLDEN("report_exit.txt", RenderText(report, TextOptions{}));
  CHECK_GOLDEN("report_exit_top1.txt", RenderText(report, TextOptions{1, true}));
}

TEST_CASE("snapshot: text") { CHECK_GOLDEN("report_snapshot.txt", RenderText(LeakySnapshot(), TextOptions{})); }

TEST_CASE("folded stacks") {
  TraceReport report = LeakyExitTrace();
  CHECK_GOLDEN("report_exit.collapsed", *RenderCollapsed(report, Weight::kDefault));
  CHECK_GOLDEN("report_exit_peak.collapsed", *RenderCollapsed(report, Weight::kPeak));
  CHECK_GOLDEN("report_snapshot.collapsed", *RenderCollapsed(LeakySnapshot(), Weight::kDefault));
  CHECK(RenderCollapsed(report, Weight::kAllocated)->find("Buffer::Grow()") != std::string::npos);
  // A report read back keeps no sites: weights that need them say so.
  report.has_sites = false;
  report.sites.clear();
  CHECK(RenderCollapsed(report, Weight::kAllocated).status().message() ==
        "--weight allocated needs the trace file (a report keeps no allocations)");
  CHECK(ParseWeight("bogus").status().message() == "--weight bogus is not one of leaked, live, peak, allocated");
}

TEST_CASE("exit trace: JSON") {
  CHECK_GOLDEN("report_exit.json", RenderJson(LeakyExitTrace(), 0).dump(2) + "\n");
  nlohmann::json cut = RenderJson(LeakyExitTrace(), 1);
  CHECK(cut["leaks"].size() == 1);
  CHECK(cut["leaks_not_listed"] == nlohmann::json{{"stacks", 1}, {"bytes", 24}, {"count", 1}});
  CHECK(cut["leaked_bytes"] == 1024);
  nlohmann::json snapshot = RenderJson(LeakySnapshot(), 0);
  CHECK(snapshot.contains("sites"));
  CHECK_FALSE(snapshot.contains("leaks"));
}

TEST_CASE("LeakSummaryText: a raw trace symbolized and rendered in process; nothing when nothing leaked") {
  nlohmann::json trace = nlohmann::json::parse(R"({
    "memtide_trace_version": 1, "kind": "exit", "pid": 9, "command": ["p"], "mode": "full",
    "totals": {"live_bytes": 64, "live_blocks": 1},
    "modules": [{"path": "/nonexistent/p", "build_id": ""}],
    "stacks": [{"id": 1, "frames": [[0, 4660]]}, {"id": 2, "frames": [[0, 4661]]}],
    "sites": [{"stack": 1, "live_bytes": 64, "live_blocks": 1, "sizes": [64]},
              {"stack": 2, "peak_bytes": 99, "peak_blocks": 1}]})");
  absl::StatusOr<std::string> text = LeakSummaryText(trace, "", 10);
  REQUIRE(text.ok());
  CHECK(*text ==
        "Leak of 64 bytes in 1 block (sizes 64)\n"
        "    #0 ?? (p+0x1234)\n"
        "\n"
        "SUMMARY: 64 bytes leaked in 1 block from 1 stack.\n");
  trace["sites"][0]["live_blocks"] = 0;
  trace["sites"][0]["live_bytes"] = 0;
  CHECK(LeakSummaryText(trace, "", 10).value() == "");
  CHECK(LeakSummaryText(trace, "/nonexistent/supp", 10).status().message().find("suppressions") !=
        absl::string_view::npos);
  trace["memtide_trace_version"] = 3;
  CHECK_FALSE(LeakSummaryText(trace, "", 10).ok());
}

}  // namespace
}  // namespace memtide
