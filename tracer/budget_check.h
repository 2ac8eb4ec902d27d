// Budgets a CI job sets on a run: heap peak, GPU peak, leaked bytes, and growth against a baseline report.
// Each broken budget is one line "<what> <value> exceeds <budget>" (printed after "memtide: "), and the
// whole can be written as a Markdown summary for a CI job page. Pure functions of the models. Runs in the
// CLI (`memtide run`, `memtide check`).
#ifndef MEMTIDE_TRACER_BUDGET_CHECK_H_
#define MEMTIDE_TRACER_BUDGET_CHECK_H_

#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "trace_report.h"

namespace memtide {

// The allowed growth against --baseline when --max-increase is not given.
inline constexpr double kDefaultMaxIncreasePercent = 5.0;

struct Budgets {
  std::optional<int64_t> max_peak_bytes;      // the run report's heap.peak_bytes (usable bytes)
  std::optional<int64_t> max_gpu_peak_bytes;  // every device's peak_bytes
  std::optional<int64_t> max_leak_bytes;      // leaked_bytes: not suppressed, not the C runtime's
  // With a baseline: heap peak and leaked bytes may grow by at most this (kDefaultMaxIncreasePercent unset).
  std::optional<double> max_increase_percent;
  bool empty() const { return !max_peak_bytes && !max_gpu_peak_bytes && !max_leak_bytes && !max_increase_percent; }
};

struct BudgetCheck {
  std::string name;   // "heap peak (--max-peak)"
  std::string value;  // what the run measured, for a table ("12.0 MiB"; "-" when unknown)
  std::string limit;  // "16.0 MiB"
  bool passed = true;
  std::string violation;  // when failed: one line without the "memtide: " prefix
};

struct BudgetResult {
  std::vector<BudgetCheck> checks;
  bool passed() const;
  std::vector<std::string> Violations() const;
};

// `report` is a run report (heap and GPU figures in report.run_report) or a trace (leaks only); `baseline`
// (may be null) an earlier one, compared on heap peak and on leaked bytes where both have them. A budget
// that cannot be checked (no memtide data, no leak check) fails, saying why.
BudgetResult CheckBudgets(const TraceReport& report, const TraceReport* baseline, const Budgets& budgets);

// GitHub-flavoured Markdown for a CI job page: the verdict, peak heap/GPU/RSS, the budgets with pass/fail,
// the top `top_leaks` leaks with the frame that matters, and the comparison with the baseline.
std::string SummaryMarkdown(const TraceReport& report, const TraceReport* baseline, const Budgets& budgets,
                            const BudgetResult& result, int top_leaks);

}  // namespace memtide

#endif  // MEMTIDE_TRACER_BUDGET_CHECK_H_
