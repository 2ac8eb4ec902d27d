// memtide: the command-line tool. Parses and validates every flag up front (CLI11), runs one subcommand,
// and turns a failed absl::Status into one line "memtide: error: …" and a non-zero exit.
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "fmt/format.h"
#include "options.h"
#include "outside_cli.h"
#include "run_command.h"
#include "show_command.h"

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

// A CLI11 validator for sizes such as 10000, 64KiB, 512MiB, 2G.
CLI::Validator SizeValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        int64_t bytes;
        if (!ParseSize(text.c_str(), &bytes)) return fmt::format("'{}' is not a size such as 10000, 64KiB or 2G", text);
        return {};
      },
      "SIZE");
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
  std::string max_peak;
  std::string max_gpu_peak;
  CLI::App* run_command = app.add_subcommand("run", "Run a program under memtide and report its memory");
  run_command->add_option("--report", run.report_path, "Write the JSON report to FILE")->type_name("FILE");
  run_command->add_option("--max-peak", max_peak, "Fail (exit 3) if the heap peak exceeds SIZE")
      ->check(SizeValidator());
  run_command
      ->add_option("--max-gpu-peak", max_gpu_peak,
                   "Fail (exit 3) if any GPU's device-memory peak (CUDA driver allocations) exceeds SIZE")
      ->check(SizeValidator());
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
    if (!max_peak.empty()) {
      int64_t bytes = 0;
      ParseSize(max_peak.c_str(), &bytes);
      run.max_peak_bytes = bytes;
    }
    if (!max_gpu_peak.empty()) {
      int64_t bytes = 0;
      ParseSize(max_gpu_peak.c_str(), &bytes);
      run.max_gpu_peak_bytes = bytes;
    }
    absl::StatusOr<int> exit_code = RunCommand(run);
    if (exit_code.ok()) return *exit_code;
    status = exit_code.status();
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
