// memtide: the command-line tool. Parses and validates every flag up front (CLI11), runs one subcommand,
// and turns a failed absl::Status into one line "memtide: error: …" and a non-zero exit.
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "check_command.h"
#include "diff_command.h"
#include "fmt/format.h"
#include "options.h"
#include "outside_cli.h"
#include "report_command.h"
#include "run_command.h"
#include "show_command.h"
#include "snapshot_command.h"

namespace memtide {
namespace {

constexpr int kUsageExitCode = 2;

// The MEMTIDE_* table (preload/options.def), for `memtide run --help`.
std::string EnvironmentHelp() {
  std::string text = "\nEnvironment read by the traced program (MEMTIDE_*):\n";
  size_t count;
  const OptionInfo* table = OptionTable(&count);
  for (size_t i = 0; i < count; ++i) {
    std::string default_text = table[i].default_text;
    if (table[i].kind == OptionKind::kPath) default_text = default_text.substr(1, default_text.size() - 2);
    if (default_text.empty()) default_text = "none";
    if (table[i].kind == OptionKind::kDuration) default_text += "ms";
    text += fmt::format("  {:<22} {} (default: {})\n", table[i].env, table[i].doc, default_text);
  }
  return text;
}

std::string DefaultDirectory() {
  Options options;
  LoadOptions(&options, nullptr, nullptr);
  return options.dir.text;
}

int Main(int argc, char** argv) {
  CLI::App app{"memtide: exact live and peak memory of any process, from inside (LD_PRELOAD) and outside"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "memtide " MEMTIDE_VERSION);

  RunOptions run;
  BudgetFlags run_budgets;
  std::string trace_mode;
  bool leaks = false;
  CLI::App* run_command = app.add_subcommand("run", "Run a program under memtide and report its memory");
  run_command->add_option("--report", run.report_path, "Write the JSON report to FILE")->type_name("FILE");
  AddBudgetFlags(run_command, &run_budgets, true);
  CLI::Option* trace_option =
      run_command
          ->add_option("--trace", trace_mode,
                       "Record allocation stacks: sample (cheap, estimates) or full (every block); prints the "
                       "leaks and the stacks at the peak")
          ->check(CLI::IsMember({"sample", "full"}));
  run_command->add_flag("--leaks", leaks, "Leak check: --trace full, leaks printed and in the report")
      ->excludes(trace_option);
  run_command
      ->add_option("--suppressions", run.suppressions_path,
                   "LeakSanitizer-format file of leak:PATTERN lines (needs --leaks or --trace)")
      ->type_name("FILE");
  run_command->add_option("--top", run.top, "Stacks printed per section (default: 10; 0: all)")
      ->check(CLI::NonNegativeNumber);
  run_command->add_option("--dir", run.directory, "Segment directory (default: MEMTIDE_DIR or /dev/shm)")
      ->type_name("DIR");
  run_command->add_flag("--keep-segment", run.keep_segment, "Leave the segment file in place after the run");
  run_command->add_flag("-q,--quiet", run.quiet, "No summary on standard error");
  run_command
      ->add_option("--allocator", run.allocator,
                   "Allocator under memtide: glibc (default), mimalloc, jemalloc or tcmalloc (Debian's library)")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kAllocatorNames), std::end(kAllocatorNames))));
  run_command->add_option("command", run.command, "The program and its arguments (after --)")->required();
  run_command->footer(EnvironmentHelp());

  pid_t show_pid = 0;
  bool show_json = false;
  std::string show_directory = DefaultDirectory();
  CLI::App* show_command = app.add_subcommand("show", "Show one process's segment (live, exited or killed)");
  show_command->add_option("pid", show_pid, "Process id")->required()->check(CLI::PositiveNumber);
  show_command->add_flag("--json", show_json, "Print JSON");
  show_command->add_option("--dir", show_directory, "Segment directory (default: MEMTIDE_DIR or /dev/shm)");

  // top, gc, trim, reset-peak, doctor, monitor, export (viewer/outside_cli.cc).
  OutsideCommands outside(&app);

  // Trace files: report, diff, check, snapshot.
  ReportOptions report_options;
  CLI::App* report_command = AddReportCommand(&app, &report_options);
  DiffOptions diff_options;
  CLI::App* diff_command = AddDiffCommand(&app, &diff_options);
  CheckOptions check_options;
  CLI::App* check_command = AddCheckCommand(&app, &check_options);
  SnapshotOptions snapshot_options;
  CLI::App* snapshot_command = AddSnapshotCommand(&app, &snapshot_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() != 0) {
      fmt::print(stderr, "memtide: error: {}\n", error.what());
      return kUsageExitCode;
    }
    return app.exit(error);
  }

  absl::Status status;
  if (run_command->parsed()) {
    run.budgets = BudgetsFromFlags(run_budgets);
    run.baseline_path = run_budgets.baseline;
    run.summary_md_path = run_budgets.summary_md;
    run.trace_mode = leaks ? "full" : trace_mode;
    // A leak budget needs a leak check.
    if (run.budgets.max_leak_bytes && run.trace_mode.empty()) run.trace_mode = "full";
    absl::StatusOr<int> exit_code = RunCommand(run);
    if (exit_code.ok()) return *exit_code;
    status = exit_code.status();
  } else if (check_command->parsed()) {
    absl::StatusOr<int> exit_code = CheckCommand(check_options);
    if (exit_code.ok()) return *exit_code;
    status = exit_code.status();
  } else if (report_command->parsed()) {
    status = ReportCommand(report_options);
  } else if (diff_command->parsed()) {
    status = DiffCommand(diff_options);
  } else if (snapshot_command->parsed()) {
    status = SnapshotCommand(snapshot_options);
  } else if (show_command->parsed()) {
    status = ShowCommand(show_pid, show_directory, show_json);
  } else if (std::optional<absl::Status> outside_status = outside.RunParsed()) {
    status = *outside_status;
  }
  if (!status.ok()) {
    fmt::print(stderr, "memtide: error: {}\n", std::string(status.message()));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace memtide

int main(int argc, char** argv) { return memtide::Main(argc, argv); }
