// See snapshot_command.h. Runs in the CLI.
#include "snapshot_command.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "byte_format.h"
#include "control_client.h"
#include "flag_values.h"
#include "fmt/format.h"
#include "memtide/segment.h"
#include "printable.h"
#include "report_command.h"
#include "segment_reader.h"
#include "segment_scan.h"
#include "symbolizer.h"
#include "trace_report.h"

namespace memtide {
namespace {

// Reads the snapshot the process wrote: ours (or root's request), a regular file, not a link, bounded.
absl::StatusOr<std::string> ReadSnapshotFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open the snapshot ", path, ": ", strerror(errno)));
  struct stat status;
  std::string problem;
  if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    problem = "is not a regular file";
  } else if (geteuid() != 0 && status.st_uid != geteuid()) {
    problem = absl::StrCat("is owned by uid ", status.st_uid, ", not you");
  } else if (status.st_size > kMaxTraceFileBytes) {
    problem = absl::StrCat("has ", status.st_size, " bytes, more than a trace may have");
  }
  if (!problem.empty()) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("the snapshot ", path, " ", problem));
  }
  std::string text(static_cast<size_t>(status.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    ssize_t got = read(fd, text.data() + done, text.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got);
  }
  close(fd);
  text.resize(done);
  return text;
}

}  // namespace

absl::Status ValidateSnapshotName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos || name.size() > 255 ||
      Printable(name) != name) {
    return absl::InvalidArgumentError(
        absl::StrCat("the process answered '", Printable(name), "', which is not a file name in its segment folder"));
  }
  return absl::OkStatus();
}

CLI::App* AddSnapshotCommand(CLI::App* app, SnapshotOptions* options) {
  CLI::App* command = app->add_subcommand(
      "snapshot", "Ask a traced process (MEMTIDE_TRACE=sample|full) for its live allocations by stack");
  options->directory = DefaultSegmentDirectory();
  command->add_option("pid", options->pid, "Process id")->required()->check(CLI::PositiveNumber);
  command
      ->add_option("-o,--output", options->output,
                   "Write the trace file (for memtide report/diff) to FILE instead of printing a report")
      ->type_name("FILE");
  command->add_option("--dir", options->directory, "Segment directory (default: MEMTIDE_DIR or /dev/shm)")
      ->type_name("DIR");
  command->add_option("--timeout", options->timeout, "How long to wait for the file (default: 30 s)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            absl::StatusOr<int64_t> parsed = ParseTimeoutMs(text);
            return parsed.ok() ? std::string() : std::string(parsed.status().message());
          },
          "DURATION"));
  command->add_option("--top", options->top, "Stacks printed without -o (default: 10; 0: all)")
      ->check(CLI::NonNegativeNumber);
  return command;
}

absl::Status SnapshotCommand(const SnapshotOptions& options) {
  absl::StatusOr<int64_t> timeout_ms = ParseTimeoutMs(options.timeout);
  if (!timeout_ms.ok()) return timeout_ms.status();
  absl::StatusOr<std::string> segment = FindSegmentOfPid(options.directory, options.pid);
  if (!segment.ok()) return segment.status();
  absl::StatusOr<ControlResponse> response = SendControlRequest(*segment, kControlSnapshot, "", *timeout_ms);
  if (!response.ok()) return response.status();
  std::string who = absl::StrCat("pid ", response->pid, " (", response->command, ")");
  if (response->status == ENOTSUP) {
    // The process says why in its own words ("tracing is off in this process (start it with …)").
    std::string why = response->message.empty()
                          ? "tracing is off (start it with MEMTIDE_TRACE=sample or full, or under memtide run --trace)"
                          : response->message;
    return absl::FailedPreconditionError(absl::StrCat(who, ": ", why));
  }
  if (response->status != 0) {
    return absl::AbortedError(absl::StrCat(who, " could not take a snapshot: ",
                                           response->message.empty() ? strerror(response->status) : response->message));
  }
  if (absl::Status valid = ValidateSnapshotName(response->message); !valid.ok()) return valid;
  const std::string path = options.directory + "/" + response->message;

  // The file is ours to remove whatever it holds: it was written for this request only.
  absl::StatusOr<std::string> text = ReadSnapshotFile(path);
  unlink(path.c_str());
  if (!text.ok()) return text.status();
  absl::StatusOr<nlohmann::json> parsed = ParseJsonText(*text, who + "'s snapshot");
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& json = *parsed;
  // Validate without naming anything (module+offset frames only): cheap, and -o keeps the raw file anyway.
  absl::StatusOr<TraceReport> checked = ParseRawTrace(json, who + "'s snapshot", nullptr, ListsOnly(0));
  if (!checked.ok()) return checked.status();
  if (checked->trace.kind != TraceKind::kSnapshot) {
    return absl::InvalidArgumentError(absl::StrCat(who, " answered with a trace of kind exit, not a snapshot"));
  }
  if (!options.output.empty()) {
    if (absl::Status written = WriteFileAtomically(options.output, *text, "-o"); !written.ok()) return written;
    int64_t bytes = 0, blocks = 0;
    for (const StackTotal& site : checked->live_sites) {
      bytes += site.bytes;
      blocks += site.count;
    }
    fmt::print("{}: snapshot written to {}: {} live in {} from {} stack{} ({} trace)\n", who, options.output,
               HumanBytes(bytes), Blocks(blocks), checked->live_sites.size(), checked->live_sites.size() == 1 ? "" : "s",
               checked->trace.mode);
    return absl::OkStatus();
  }
  Symbolizer symbolizer;
  absl::StatusOr<TraceReport> report = ParseRawTrace(json, who + "'s snapshot", &symbolizer, ListsOnly(0));
  if (!report.ok()) return report.status();
  TextOptions text_options;
  text_options.top = options.top;
  fmt::print("{}", RenderText(*report, text_options));
  return absl::OkStatus();
}

}  // namespace memtide
