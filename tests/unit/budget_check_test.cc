// Unit tests for tracer/budget_check.cc: every budget passes and fails with one exact line, a budget that
// cannot be checked fails, the baseline comparison, and the Markdown summary (golden file).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "budget_check.h"

#include <doctest/doctest.h>

#include "report_test_models.h"

namespace memtide {
namespace {

using Json = nlohmann::json;

TraceReport RunReport(int64_t heap_peak, int64_t leak_scale) {
  TraceReport report = test::LeakyExitTrace(leak_scale);
  report.path = "report.json";
  report.run_report = Json::parse(R"({"memtide_report_version": 2, "command": ["./leaky", "--items", "10"],
    "pid": 4242, "exit_code": 0, "signal": null, "duration_s": 0.81, "status": "exited",
    "heap": {"current_bytes": 3000, "peak_bytes": 0},
    "rss": {"peak_bytes": 9437184, "final_bytes": 8388608},
    "gpu": [{"index": 0, "uuid": "GPU-1", "peak_bytes": 1073741824, "current_bytes": 0},
            {"index": 1, "uuid": "GPU-2", "peak_bytes": 5000, "current_bytes": 0}]})");
  report.run_report["heap"]["peak_bytes"] = heap_peak;
  return report;
}

TEST_CASE("budgets that hold") {
  TraceReport report = RunReport(5000000, 1);
  Budgets budgets;
  budgets.max_peak_bytes = 5000000;
  budgets.max_gpu_peak_bytes = 2LL << 30;
  budgets.max_leak_bytes = 1024;
  BudgetResult result = CheckBudgets(report, nullptr, budgets);
  CHECK(result.passed());
  CHECK(result.checks.size() == 4);  // heap, two GPUs, leaks
  CHECK(result.Violations().empty());
}

TEST_CASE("each broken budget is one line") {
  TraceReport report = RunReport(5000001, 1);
  Budgets budgets;
  budgets.max_peak_bytes = 5000000;
  budgets.max_gpu_peak_bytes = 1 << 20;
  budgets.max_leak_bytes = 1000;
  BudgetResult result = CheckBudgets(report, nullptr, budgets);
  CHECK_FALSE(result.passed());
  CHECK(result.Violations() ==
        std::vector<std::string>{
            "heap peak 4.8 MiB (5000001 bytes) exceeds --max-peak 4.8 MiB (5000000 bytes)",
            "GPU 0 device-memory peak 1.0 GiB (1073741824 bytes) exceeds --max-gpu-peak 1.0 MiB (1048576 bytes)",
            "leaked 1.0 KiB (1024 bytes) in 11 blocks exceeds --max-leak 1000 B (1000 bytes)",
        });
}

TEST_CASE("a budget that cannot be checked fails, saying why") {
  TraceReport no_data;
  no_data.path = "report.json";
  no_data.run_report = {
      {"memtide_report_version", 2},
      {"status", "no_segment"},
      {"trace_status", "killed"},
      {"trace_error", "the program was killed by signal 9 (SIGKILL) before it could write its trace"}};
  Budgets budgets;
  budgets.max_peak_bytes = 1;
  budgets.max_gpu_peak_bytes = 1;
  budgets.max_leak_bytes = 1;
  CHECK(CheckBudgets(no_data, nullptr, budgets).Violations() ==
        std::vector<std::string>{
            "--max-peak cannot be checked without memtide data",
            "--max-gpu-peak cannot be checked without memtide data",
            "--max-leak cannot be checked: the program was killed by signal 9 (SIGKILL) before it could write its "
            "trace",
        });
  TraceReport trace_file;  // a raw trace read back: no run report around it
  trace_file.path = "trace.json";
  Budgets peaks;
  peaks.max_peak_bytes = 1;
  peaks.max_gpu_peak_bytes = 1;
  CHECK(CheckBudgets(trace_file, nullptr, peaks).Violations() ==
        std::vector<std::string>{
            "--max-peak cannot be checked on a trace file, which holds no heap or GPU counters (check the report of "
            "`memtide run --report FILE`)",
            "--max-gpu-peak cannot be checked on a trace file, which holds no heap or GPU counters (check the report "
            "of `memtide run --report FILE`)",
        });
  no_data.run_report.erase("trace_error");
  Budgets leak_only;
  leak_only.max_leak_bytes = 1;
  CHECK(CheckBudgets(no_data, nullptr, leak_only).Violations()[0] ==
        "--max-leak cannot be checked: the report has no leak check (memtide run --leaks)");
  // No GPU at all is a GPU peak of zero.
  TraceReport cpu_only = RunReport(10, 1);
  cpu_only.run_report.erase("gpu");
  Budgets gpu;
  gpu.max_gpu_peak_bytes = 1;
  CHECK(CheckBudgets(cpu_only, nullptr, gpu).passed());
}

TEST_CASE("a run whose malloc was not memtide's checks no heap or leak budget, and still its GPU ones") {
  TraceReport report = RunReport(10, 1);
  report.run_report["disabled_features"] = {"heap_hooks"};
  Budgets budgets;
  budgets.max_peak_bytes = 1 << 20;
  budgets.max_leak_bytes = 1 << 20;
  budgets.max_gpu_peak_bytes = 1 << 20;
  const std::string why =
      "the program's malloc is not memtide's (its executable, or a library preloaded first, defines malloc; "
      "disabled_features: heap_hooks)";
  CHECK(CheckBudgets(report, nullptr, budgets).Violations() ==
        std::vector<std::string>{
            "--max-peak cannot be checked: " + why,
            "GPU 0 device-memory peak 1.0 GiB (1073741824 bytes) exceeds --max-gpu-peak 1.0 MiB (1048576 bytes)",
            "--max-leak cannot be checked: " + why,
        });
  TraceReport baseline = RunReport(10, 1);
  CHECK(CheckBudgets(report, &baseline, Budgets{}).Violations() ==
        std::vector<std::string>{"--baseline report.json cannot be compared: " + why});
}

TEST_CASE("baseline: heap peak and leaked bytes may grow by the allowed percentage") {
  TraceReport baseline = RunReport(10000000, 1);
  baseline.path = "baseline.json";
  Budgets budgets;  // default 5%
  CHECK(CheckBudgets(RunReport(10500000, 1), &baseline, budgets).passed());
  BudgetResult grown = CheckBudgets(RunReport(10500001, 3), &baseline, budgets);
  CHECK(grown.Violations() ==
        std::vector<std::string>{
            "heap peak 10.0 MiB (10500001 bytes) exceeds the baseline's 9.5 MiB (10000000 bytes) + 5% = 10500000 "
            "bytes (+5.0%; baseline.json)",
            "leaked 3.0 KiB (3024 bytes) exceeds the baseline's 1.0 KiB (1024 bytes) + 5% = 1075 bytes (+195.3%; "
            "baseline.json)",
        });
  budgets.max_increase_percent = 0;
  CHECK_FALSE(CheckBudgets(RunReport(10000001, 1), &baseline, budgets).passed());
  budgets.max_increase_percent = 300;
  CHECK(CheckBudgets(RunReport(10500001, 3), &baseline, budgets).passed());
  // A baseline with nothing in common.
  TraceReport empty;
  empty.path = "empty.json";
  CHECK(CheckBudgets(RunReport(1, 1), &empty, budgets).Violations() ==
        std::vector<std::string>{"--baseline empty.json cannot be compared: the two have neither a heap peak nor a "
                                 "leak check in common"});
}

TEST_CASE("Markdown summary for a CI job page") {
  TraceReport baseline = RunReport(4000000, 1);
  baseline.path = "main/report.json";
  TraceReport report = RunReport(5000001, 3);
  Budgets budgets;
  budgets.max_peak_bytes = 5000000;
  budgets.max_leak_bytes = 4096;
  budgets.max_increase_percent = 10;
  BudgetResult result = CheckBudgets(report, &baseline, budgets);
  CHECK_GOLDEN("summary.md", SummaryMarkdown(report, &baseline, budgets, result, 10));
}

}  // namespace
}  // namespace memtide
