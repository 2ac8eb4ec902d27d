// See report_command.h. Runs in the CLI.
#include "report_command.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "run_command.h"
#include "symbolizer.h"

namespace memtide {

CLI::App* AddReportCommand(CLI::App* app, ReportOptions* options) {
  CLI::App* command = app->add_subcommand(
      "report",
      "Print a trace file (MEMTIDE_TRACE_FILE, memtide snapshot) or a run report: leaks, live and peak sites");
  command->add_option("file", options->path, "Trace file or `memtide run --report` file")->required();
  command->add_option("--format", options->format, "text (default), json or collapsed (folded stacks for flame graphs)")
      ->check(CLI::IsMember({"text", "json", "collapsed"}));
  command->add_option("--top", options->top, "Stacks per section (default: 10; 0: all)")->check(CLI::NonNegativeNumber);
  command->add_option("--suppressions", options->suppressions, "LeakSanitizer-format file of leak:PATTERN lines")
      ->type_name("FILE");
  command
      ->add_option("--weight", options->weight,
                   "collapsed: leaked (default at exit), live (default in a snapshot), peak or allocated")
      ->check(CLI::IsMember({"leaked", "live", "peak", "allocated"}));
  return command;
}

absl::StatusOr<LeakSuppressions> LoadSuppressions(const std::string& path) {
  if (path.empty()) return LeakSuppressions();
  return LeakSuppressions::Load(path);
}

RawTraceOptions ListsOnly(int top) {
  RawTraceOptions options;
  options.all_site_stacks = false;
  if (top > 0) options.named_entries = static_cast<size_t>(top);
  return options;
}

absl::StatusOr<TraceReport> OpenTraceOrReport(const std::string& path, const LeakSuppressions& suppressions,
                                              const RawTraceOptions& raw) {
  absl::StatusOr<nlohmann::json> json = ReadJsonFile(path);
  if (!json.ok()) return json.status();
  Symbolizer symbolizer;
  absl::StatusOr<TraceReport> report = ParseTraceOrReport(*json, path, &symbolizer, raw);
  if (!report.ok()) return report.status();
  ClassifyLeaks(suppressions, &*report, raw.named_entries);
  return report;
}

nlohmann::json ReportJson(const TraceReport& report) {
  nlohmann::json json = report.run_report.is_object() ? report.run_report : nlohmann::json::object();
  json[kRunReportVersionKey] = kRunReportVersion;
  if (!report.run_report.is_object()) {
    json["command"] = report.trace.command;
    json["pid"] = report.trace.pid;
    if (report.trace.kind == TraceKind::kExit) {
      json["exit_code"] = report.trace.exit_code ? nlohmann::json(*report.trace.exit_code) : nlohmann::json(nullptr);
    }
  }
  for (const char* key : {"leaks", "runtime_leaks", "sites", "peak_sites", "leaks_not_listed",
                          "runtime_leaks_not_listed", "sites_not_listed", "peak_sites_not_listed"}) {
    json.erase(key);
  }
  // As many entries per list as `memtide run` keeps in its report, with the rest summed in "*_not_listed".
  json.update(RenderJson(report, kRunReportMaxStacks));
  return json;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents, const std::string& what) {
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write ", what, " ", path, ": ", strerror(errno)));
    }
    out << contents;
    if (!out.flush()) return absl::InvalidArgumentError(absl::StrCat("cannot write ", what, " ", path));
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    unlink(temporary.c_str());
    return absl::InvalidArgumentError(absl::StrCat("cannot write ", what, " ", path, ": ", strerror(error)));
  }
  return absl::OkStatus();
}

absl::Status ReportCommand(const ReportOptions& options) {
  absl::StatusOr<LeakSuppressions> suppressions = LoadSuppressions(options.suppressions);
  if (!suppressions.ok()) return suppressions.status();
  // Text shows the first --top entries of each list, JSON the first kRunReportMaxStacks. Collapsed stacks read
  // one list whole but name no entry: each line reads the frames of its entry's first site in place
  // (EntryFrames), and by allocated bytes every site's own frames. (PyTorch's import, 607,000 sites: naming
  // every list took the leaked weight from 8 s and 0.9 GB to 19 s and 2.9 GB; naming the peak list alone,
  // 26 s and 2.9 GB.)
  RawTraceOptions raw = ListsOnly(options.format == "text" ? options.top
                                  : options.format == "json" ? kRunReportMaxStacks
                                                             : 0);
  if (options.format == "collapsed") {
    raw.named_entries = 0;
    raw.all_site_frames = options.weight == "allocated";
  }
  absl::StatusOr<TraceReport> report = OpenTraceOrReport(options.path, *suppressions, raw);
  if (!report.ok()) return report.status();
  if (!report->has_trace) {
    std::string why = "the run was not traced (memtide run --leaks or --trace)";
    if (auto error = report->run_report.find("trace_error"); error != report->run_report.end() && error->is_string()) {
      why = SafeText(error->get<std::string>());
    }
    return absl::FailedPreconditionError(absl::StrCat(SafeText(options.path), " has no trace: ", why));
  }
  if (options.format == "json") {
    fmt::print("{}\n", ReportJson(*report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (options.format == "collapsed") {
    absl::StatusOr<Weight> weight = ParseWeight(options.weight);
    if (!weight.ok()) return weight.status();
    absl::Status written = WriteCollapsed(*report, *weight, [](std::string_view chunk) {
      fwrite(chunk.data(), 1, chunk.size(), stdout);
    });
    if (!written.ok()) return written;
  } else {
    TextOptions text_options;
    text_options.top = options.top;
    fmt::print("{}", RenderText(*report, text_options));
  }
  return absl::OkStatus();
}

}  // namespace memtide
