// See outside_cli.h. Runs in the CLI.
#include "outside_cli.h"

#include <string>
#include <vector>

#include "control_commands.h"
#include "doctor_command.h"
#include "export_command.h"
#include "flag_values.h"
#include "gc_command.h"
#include "monitor_command.h"
#include "segment_scan.h"
#include "top_command.h"

namespace memtide {
namespace {

// A CLI11 validator from one of flag_values.h's parsers: the parser's message is the error.
template <typename Parser>
CLI::Validator FlagValidator(Parser parser, const std::string& type_name) {
  return CLI::Validator(
      [parser](std::string& text) -> std::string {
        auto parsed = parser(text);
        return parsed.ok() ? std::string() : std::string(parsed.status().message());
      },
      type_name);
}

constexpr const char* kDirHelp = "Segment directory; repeat for several (default: MEMTIDE_DIR or /dev/shm)";

}  // namespace

struct OutsideCommands::State {
  std::vector<std::string> default_directories{DefaultSegmentDirectory()};

  CLI::App* top = nullptr;
  TopOptions top_options;
  std::string top_sort = "rss", top_interval = "1";

  CLI::App* gc = nullptr;
  GcOptions gc_options;
  std::string gc_grace = "5s";

  CLI::App* trim = nullptr;
  CLI::App* reset_peak = nullptr;
  ControlOptions trim_options, reset_options;
  std::string trim_timeout = "5", reset_timeout = "5";

  CLI::App* doctor = nullptr;
  DoctorOptions doctor_options;

  CLI::App* monitor = nullptr;
  MonitorOptions monitor_options;
  std::string monitor_interval = "60";

  CLI::App* exporter = nullptr;
  ExportOptions export_options;
  std::string export_listen, export_interval = "15";
};

OutsideCommands::OutsideCommands(CLI::App* app) : state_(std::make_unique<State>()) {
  State& s = *state_;
  const CLI::Validator interval = FlagValidator(ParseIntervalMs, "DURATION");
  const CLI::Validator timeout = FlagValidator(ParseTimeoutMs, "DURATION");

  s.top = app->add_subcommand("top", "Live table of every process with a memtide segment");
  s.top_options.directories = s.default_directories;
  s.top->add_option("--dir", s.top_options.directories, kDirHelp)->type_name("DIR");
  s.top->add_option("--sort", s.top_sort, "Order by rss, heap, peak, gpu or pid (default: rss)")
      ->check(FlagValidator(ParseSortKey, "KEY"));
  s.top->add_option("--interval", s.top_interval, "Refresh period: 2 (seconds), 500ms, 1m (default: 1)")
      ->check(interval);
  s.top->add_flag("--once", s.top_options.once, "Print one table and exit (for scripts)");
  s.top->add_flag("--json", s.top_options.json, "JSON: one document with --once, else one line per refresh");
  s.top->add_option("--count", s.top_options.count, "Exit after N refreshes")->check(CLI::PositiveNumber);

  s.gc = app->add_subcommand("gc", "Remove the segments of processes that are gone (only yours)");
  s.gc_options.directories = s.default_directories;
  s.gc->add_option("--dir", s.gc_options.directories, kDirHelp)->type_name("DIR");
  s.gc->add_flag("-n,--dry-run", s.gc_options.dry_run, "Only say what would be removed");
  s.gc->add_option("--grace", s.gc_grace,
                   "Leave a segment published less than this long ago, even if its pid is not alive here "
                   "(a process in another pid namespace); default 5s")
      ->check(FlagValidator(ParseGraceMs, "DURATION"));

  auto add_control = [&](const char* name, const char* help, ControlOptions* options, std::string* timeout_text) {
    CLI::App* command = app->add_subcommand(name, help);
    options->directory = s.default_directories.front();
    command->add_option("pid", options->pid, "Process id")->required()->check(CLI::PositiveNumber);
    command->add_option("--dir", options->directory, "Segment directory (default: MEMTIDE_DIR or /dev/shm)")
        ->type_name("DIR");
    command->add_option("--timeout", *timeout_text, "How long to wait for the answer (default: 5 s)")->check(timeout);
    command->add_flag("--json", options->json, "Print JSON");
    return command;
  };
  s.trim = add_control("trim", "Ask a process to give freed memory back to the OS now; prints RSS before and after",
                       &s.trim_options, &s.trim_timeout);
  s.reset_peak = add_control("reset-peak", "Ask a process to reset its heap peak to its current heap", &s.reset_options,
                             &s.reset_timeout);

  s.doctor = app->add_subcommand("doctor",
                                 "Diagnose memory: machine, container cgroup, top processes, "
                                 "segments, GPU, alert level");
  s.doctor_options.directories = s.default_directories;
  s.doctor->add_option("--dir", s.doctor_options.directories, kDirHelp)->type_name("DIR");
  s.doctor->add_flag("--json", s.doctor_options.json, "Print JSON");

  s.monitor = app->add_subcommand("monitor", "One line per process per interval, for logs; alert changes stand out");
  s.monitor_options.directories = s.default_directories;
  s.monitor->add_option("--dir", s.monitor_options.directories, kDirHelp)->type_name("DIR");
  s.monitor->add_option("--interval", s.monitor_interval, "Period: 60 (seconds), 500ms, 5m (default: 60)")
      ->check(interval);
  s.monitor->add_option("--csv", s.monitor_options.csv_path, "Also append the rows to FILE as CSV")->type_name("FILE");
  s.monitor->add_option("--count", s.monitor_options.count, "Exit after N intervals")->check(CLI::PositiveNumber);

  s.exporter = app->add_subcommand("export", "Prometheus metrics of every segment: HTTP /metrics or a textfile");
  s.export_options.directories = s.default_directories;
  s.exporter->add_option("--dir", s.export_options.directories, kDirHelp)->type_name("DIR");
  s.exporter
      ->add_option("--listen", s.export_listen,
                   "Serve /metrics on HOST:PORT (default 127.0.0.1:9464 unless --textfile; port 0: any)")
      ->check(FlagValidator(ParseListenAddress, "HOST:PORT"));
  s.exporter
      ->add_option("--textfile", s.export_options.textfile,
                   "Write node_exporter's textfile-collector FILE (*.prom) atomically")
      ->type_name("FILE");
  s.exporter->add_option("--interval", s.export_interval, "Textfile refresh period (default: 15 s)")->check(interval);
  s.exporter->add_flag("--once", s.export_options.once, "Write the textfile once and exit");
}

OutsideCommands::~OutsideCommands() = default;

std::optional<absl::Status> OutsideCommands::RunParsed() {
  State& s = *state_;
  // The validators accepted every value, so these parses succeed.
  if (s.top->parsed()) {
    s.top_options.sort = *ParseSortKey(s.top_sort);
    s.top_options.interval_ms = *ParseIntervalMs(s.top_interval);
    return TopCommand(s.top_options);
  }
  if (s.gc->parsed()) {
    s.gc_options.grace_ms = *ParseGraceMs(s.gc_grace);
    return GcCommand(s.gc_options);
  }
  if (s.trim->parsed()) {
    s.trim_options.timeout_ms = *ParseTimeoutMs(s.trim_timeout);
    return TrimCommand(s.trim_options);
  }
  if (s.reset_peak->parsed()) {
    s.reset_options.timeout_ms = *ParseTimeoutMs(s.reset_timeout);
    return ResetPeakCommand(s.reset_options);
  }
  if (s.doctor->parsed()) return DoctorCommand(s.doctor_options);
  if (s.monitor->parsed()) {
    s.monitor_options.interval_ms = *ParseIntervalMs(s.monitor_interval);
    return MonitorCommand(s.monitor_options);
  }
  if (s.exporter->parsed()) {
    if (!s.export_listen.empty()) s.export_options.listen = *ParseListenAddress(s.export_listen);
    s.export_options.interval_ms = *ParseIntervalMs(s.export_interval);
    return ExportCommand(s.export_options);
  }
  return std::nullopt;
}

}  // namespace memtide
