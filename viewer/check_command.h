// `memtide check REPORT [--max-peak SIZE] [--max-gpu-peak SIZE] [--max-leak SIZE] [--baseline OLD
// [--max-increase PCT]] [--summary-md FILE]`: the budgets of `memtide run`, applied to a report (or trace)
// that already exists, for CI jobs that run the program elsewhere. Exit 3 when a budget is exceeded. The
// budget flags and their application are shared with `memtide run`. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_CHECK_COMMAND_H_
#define MEMTIDE_VIEWER_CHECK_COMMAND_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "budget_check.h"
#include "report_render.h"
#include "trace_report.h"

namespace memtide {

// The flags as typed; CLI11 validates each while parsing.
struct BudgetFlags {
  std::string max_peak, max_gpu_peak, max_leak;
  std::string baseline;
  std::string max_increase;
  std::string summary_md;
};

// --max-peak, --max-gpu-peak, --max-leak, --baseline, --max-increase (needs --baseline), --summary-md.
// `for_run`: the help says that --max-leak turns the leak check on.
void AddBudgetFlags(CLI::App* command, BudgetFlags* flags, bool for_run);
Budgets BudgetsFromFlags(const BudgetFlags& flags);
// "5", "5%", "2.5%": a percentage between 0 and 100000.
absl::StatusOr<double> ParsePercent(const std::string& text);

// Checks the budgets; prints each violation as "memtide: …" on stderr when `print_violations`; writes the
// Markdown summary when `summary_md` is not empty. Returns whether every budget held; errors only for an
// unwritable summary.
absl::StatusOr<bool> ApplyBudgets(const TraceReport& report, const TraceReport* baseline, const Budgets& budgets,
                                  const std::string& summary_md, bool print_violations, int top_leaks);

struct CheckOptions {
  std::string path;
  BudgetFlags budgets;
  std::string suppressions;
  int top = kDefaultTopStacks;
};

CLI::App* AddCheckCommand(CLI::App* app, CheckOptions* options);
// The exit code: 0, or kBudgetExceededExitCode.
absl::StatusOr<int> CheckCommand(const CheckOptions& options);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_CHECK_COMMAND_H_
