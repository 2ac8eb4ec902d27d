// See diff_command.h. Runs in the CLI.
#include "diff_command.h"

#include "fmt/format.h"
#include "report_command.h"
#include "trace_diff.h"

namespace memtide {

CLI::App* AddDiffCommand(CLI::App* app, DiffOptions* options) {
  CLI::App* command = app->add_subcommand(
      "diff", "What grew between two trace files or reports, per stack (live in snapshots, leaked at exit)");
  command->add_option("a", options->a, "The earlier trace file or report")->required();
  command->add_option("b", options->b, "The later one")->required();
  command->add_flag("--json", options->json, "Print JSON");
  command->add_option("--top", options->top, "Stacks shown (default: 10; 0: all)")->check(CLI::NonNegativeNumber);
  command->add_flag("--peak", options->peak, "Compare what each held at its traced peak");
  command->add_option("--suppressions", options->suppressions, "LeakSanitizer-format file applied to both")
      ->type_name("FILE");
  return command;
}

absl::Status DiffCommand(const DiffOptions& options) {
  absl::StatusOr<LeakSuppressions> suppressions = LoadSuppressions(options.suppressions);
  if (!suppressions.ok()) return suppressions.status();
  absl::StatusOr<TraceReport> a = OpenTraceOrReport(options.a, *suppressions, ListsOnly(0));
  if (!a.ok()) return a.status();
  absl::StatusOr<TraceReport> b = OpenTraceOrReport(options.b, *suppressions, ListsOnly(0));
  if (!b.ok()) return b.status();
  absl::StatusOr<TraceDiff> diff = CompareTraces(*a, *b, options.peak ? DiffMetric::kPeak : DiffMetric::kLive);
  if (!diff.ok()) return diff.status();
  if (options.json) {
    fmt::print("{}\n",
               RenderDiffJson(*diff, options.top).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}", RenderDiffText(*diff, options.top));
  }
  return absl::OkStatus();
}

}  // namespace memtide
