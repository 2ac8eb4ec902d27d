// See check_command.h. Runs in the CLI.
#include "check_command.h"

#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "options.h"
#include "report_command.h"
#include "run_command.h"

namespace memtide {
namespace {

CLI::Validator SizeValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int64_t bytes;
        if (!ParseSize(text.c_str(), &bytes)) return fmt::format("'{}' is not a size such as 10000, 64KiB or 2G", text);
        return {};
      },
      "SIZE");
}

CLI::Validator PercentValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<double> percent = ParsePercent(text);
        return percent.ok() ? std::string() : std::string(percent.status().message());
      },
      "PCT");
}

std::optional<int64_t> Size(const std::string& text) {
  if (text.empty()) return std::nullopt;
  int64_t bytes = 0;
  ParseSize(text.c_str(), &bytes);
  return bytes;
}

}  // namespace

absl::StatusOr<double> ParsePercent(const std::string& text) {
  std::string number = text;
  if (!number.empty() && number.back() == '%') number.pop_back();
  char* end = nullptr;
  double value = number.empty() ? -1 : strtod(number.c_str(), &end);
  if (number.empty() || end == nullptr || *end != '\0' || !(value >= 0 && value <= 100000)) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a percentage such as 5, 5% or 2.5% (between 0 and 100000)", text));
  }
  return value;
}

void AddBudgetFlags(CLI::App* command, BudgetFlags* flags, bool for_run) {
  command->add_option("--max-peak", flags->max_peak, "Fail (exit 3) if the heap peak exceeds SIZE")
      ->check(SizeValidator());
  command
      ->add_option("--max-gpu-peak", flags->max_gpu_peak,
                   "Fail (exit 3) if any GPU's device-memory peak (CUDA driver allocations) exceeds SIZE")
      ->check(SizeValidator());
  command
      ->add_option("--max-leak", flags->max_leak,
                   std::string("Fail (exit 3) if the leaked bytes (not suppressed, not the C runtime's) exceed SIZE") +
                       (for_run ? " (implies --leaks unless --trace is given)" : ""))
      ->check(SizeValidator());
  CLI::Option* baseline =
      command
          ->add_option("--baseline", flags->baseline,
                       "Fail (exit 3) if the heap peak or the leaked bytes grew more than --max-increase over "
                       "this earlier report")
          ->type_name("FILE");
  command
      ->add_option(
          "--max-increase", flags->max_increase,
          fmt::format("Growth allowed over --baseline, in percent (default: {:g}%)", kDefaultMaxIncreasePercent))
      ->check(PercentValidator())
      ->needs(baseline);
  command->add_option("--summary-md", flags->summary_md, "Write a Markdown summary for a CI job page to FILE")
      ->type_name("FILE");
}

Budgets BudgetsFromFlags(const BudgetFlags& flags) {
  Budgets budgets;
  budgets.max_peak_bytes = Size(flags.max_peak);
  budgets.max_gpu_peak_bytes = Size(flags.max_gpu_peak);
  budgets.max_leak_bytes = Size(flags.max_leak);
  if (!flags.max_increase.empty()) budgets.max_increase_percent = *ParsePercent(flags.max_increase);
  return budgets;
}

absl::StatusOr<bool> ApplyBudgets(const TraceReport& report, const TraceReport* baseline, const Budgets& budgets,
                                  const std::string& summary_md, bool print_violations, int top_leaks) {
  BudgetResult result = CheckBudgets(report, baseline, budgets);
  if (print_violations) {
    for (const std::string& line : result.Violations()) fmt::print(stderr, "memtide: {}\n", line);
  }
  if (!summary_md.empty()) {
    absl::Status written =
        WriteFileAtomically(summary_md, SummaryMarkdown(report, baseline, budgets, result, top_leaks), "--summary-md");
    if (!written.ok()) return written;
  }
  return result.passed();
}

CLI::App* AddCheckCommand(CLI::App* app, CheckOptions* options) {
  CLI::App* command = app->add_subcommand(
      "check", "Apply memory budgets to a `memtide run --report` file (or a trace): exit 3 if one is exceeded");
  command->add_option("report", options->path, "Report (or trace file) to check")->required();
  AddBudgetFlags(command, &options->budgets, false);
  command
      ->add_option("--suppressions", options->suppressions,
                   "LeakSanitizer-format file: leaks it matches are not counted by --max-leak")
      ->type_name("FILE");
  command->add_option("--top", options->top, "Leaks listed in --summary-md (default: 10; 0: all)")
      ->check(CLI::NonNegativeNumber);
  return command;
}

absl::StatusOr<int> CheckCommand(const CheckOptions& options) {
  Budgets budgets = BudgetsFromFlags(options.budgets);
  if (budgets.empty() && options.budgets.baseline.empty() && options.budgets.summary_md.empty()) {
    return absl::InvalidArgumentError(
        "memtide check needs a budget (--max-peak, --max-gpu-peak, --max-leak, --baseline) or --summary-md");
  }
  absl::StatusOr<LeakSuppressions> suppressions = LoadSuppressions(options.suppressions);
  if (!suppressions.ok()) return suppressions.status();
  absl::StatusOr<TraceReport> report = OpenTraceOrReport(options.path, *suppressions, ListsOnly(0));
  if (!report.ok()) return report.status();
  std::optional<TraceReport> baseline;
  if (!options.budgets.baseline.empty()) {
    absl::StatusOr<TraceReport> loaded = OpenTraceOrReport(options.budgets.baseline, *suppressions, ListsOnly(0));
    if (!loaded.ok()) return loaded.status();
    baseline = std::move(*loaded);
  }
  absl::StatusOr<bool> passed =
      ApplyBudgets(*report, baseline ? &*baseline : nullptr, budgets, options.budgets.summary_md, true, options.top);
  if (!passed.ok()) return passed.status();
  return *passed ? 0 : kBudgetExceededExitCode;
}

}  // namespace memtide
