// See monitor_command.h. Runs in the CLI.
#include "monitor_command.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "alert_level.h"
#include "byte_format.h"
#include "fmt/format.h"
#include "process_table.h"
#include "segment_scan.h"
#include "stop_signal.h"

namespace memtide {
namespace {

// What the monitor remembers of a process between intervals, keyed by its segment file (pid + start time).
struct Seen {
  uint32_t alert_level = 0;
  std::string state;
  pid_t pid = 0;
  std::string command;
};

std::string UtcText(time_t now) {
  tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string LineOf(const std::string& time, const ProcessRow& row) {
  std::string line = fmt::format("{} pid {:>7} {:<7} heap {:>10} peak {:>10} mmap {:>10}", time, row.pid, row.state,
                                 HumanBytes(row.heap_current_bytes), HumanBytes(row.heap_peak_bytes),
                                 HumanBytes(row.mmap_current_bytes));
  if (row.has_gpu) {
    line +=
        fmt::format(" gpu {:>10} gpu_peak {:>10}", HumanBytes(row.gpu_current_bytes), HumanBytes(row.gpu_peak_bytes));
  }
  line += fmt::format(" rss {:>10} cgroup {:>6} alert {:<7} trims {}  {}", HumanBytes(row.rss_bytes),
                      CgroupPercentText(row), AlertLevelName(row.alert_level), row.trims, row.command);
  return line;
}

std::string CsvRow(time_t now, const ProcessRow& row, bool alert_changed) {
  std::vector<std::string> fields = {
      std::to_string(now),
      UtcText(now),
      std::to_string(row.pid),
      CsvField(row.command),
      row.state,
      std::to_string(row.heap_current_bytes),
      std::to_string(row.heap_peak_bytes),
      std::to_string(row.mmap_current_bytes),
      row.has_gpu ? std::to_string(row.gpu_current_bytes) : "",
      row.has_gpu ? std::to_string(row.gpu_peak_bytes) : "",
      std::to_string(row.rss_bytes),
      std::to_string(row.cgroup_usage_bytes),
      std::to_string(row.cgroup_limit_bytes),
      AlertLevelName(row.alert_level),
      alert_changed ? "1" : "0",
      std::to_string(row.trims),
  };
  return absl::StrJoin(fields, ",") + "\n";
}

// Appends whole lines with one write each (O_APPEND), so a reader (or a second monitor) never sees half a row.
class CsvFile {
 public:
  absl::Status Open(const std::string& path) {
    fd_ = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return absl::InvalidArgumentError(absl::StrCat("cannot open --csv ", path, ": ", strerror(errno)));
    struct stat status;
    if (fstat(fd_, &status) == 0 && status.st_size == 0) return Append(MonitorCsvHeader());
    return absl::OkStatus();
  }
  absl::Status Append(const std::string& text) {
    if (fd_ < 0) return absl::OkStatus();
    if (write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return absl::InternalError(absl::StrCat("cannot write the --csv file: ", strerror(errno)));
    }
    return absl::OkStatus();
  }
  ~CsvFile() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_ = -1;
};

}  // namespace

std::string MonitorCsvHeader() {
  return "time_unix_s,time,pid,command,state,heap_current_bytes,heap_peak_bytes,mmap_current_bytes,"
         "gpu_current_bytes,gpu_peak_bytes,rss_bytes,cgroup_usage_bytes,cgroup_limit_bytes,alert,alert_changed,"
         "trims\n";
}

std::string CsvField(absl::string_view text) {
  std::string field = "\"";
  for (char c : text) {
    if (c == '"') {
      field += "\"\"";
    } else if (c == '\n' || c == '\r') {
      field += ' ';
    } else {
      field += c;
    }
  }
  return field + "\"";
}

absl::Status MonitorCommand(const MonitorOptions& options) {
  CatchStopSignals();
  CsvFile csv;
  if (!options.csv_path.empty()) {
    if (absl::Status status = csv.Open(options.csv_path); !status.ok()) return status;
  }
  std::map<std::string, Seen> seen;  // by segment path
  std::set<std::string> problems_reported;
  for (int64_t interval = 0;; ++interval) {
    time_t now = time(nullptr);
    std::string time_text = UtcText(now);
    SegmentScan scan = ScanSegments(options.directories);
    std::vector<ProcessRow> rows = MakeProcessRows(scan.segments);
    SortProcessRows(SortKey::kPid, &rows);
    std::string out, csv_rows;
    std::map<std::string, Seen> next;
    for (const ProcessRow& row : rows) {
      auto previous = seen.find(row.path);
      bool known = previous != seen.end();
      // A process that ended was reported once, in the interval it ended (or when first seen ended).
      if (known && row.state != "running" && previous->second.state == row.state) {
        next[row.path] = previous->second;
        continue;
      }
      bool alert_changed = known && previous->second.alert_level != row.alert_level;
      if (alert_changed) {
        out += fmt::format("{} ALERT pid {} {} -> {} (cgroup {}, rss {})  {}\n", time_text, row.pid,
                           AlertLevelName(previous->second.alert_level), AlertLevelName(row.alert_level),
                           CgroupPercentText(row), HumanBytes(row.rss_bytes), row.command);
      } else if (!known && row.alert_level != kAlertNormal) {
        out += fmt::format("{} ALERT pid {} is at {} (cgroup {}, rss {})  {}\n", time_text, row.pid,
                           AlertLevelName(row.alert_level), CgroupPercentText(row), HumanBytes(row.rss_bytes),
                           row.command);
      }
      if (known && row.state != "running") {
        out += fmt::format("{} ENDED pid {} {}: last state below\n", time_text, row.pid, row.state);
      }
      out += LineOf(time_text, row) + "\n";
      csv_rows += CsvRow(now, row, alert_changed || (!known && row.alert_level != kAlertNormal));
      next[row.path] = Seen{row.alert_level, row.state, row.pid, row.command};
    }
    // A segment that vanished (removed at a normal exit without MEMTIDE_KEEP_SEGMENT) ended too. One that is
    // still there but could not be read this time (caught mid-publish, as when its process is OOM-killed while
    // publishing) is judged at the next interval, not reported as exited.
    for (const auto& [path, before] : seen) {
      if (next.count(path) != 0 || before.state != "running") continue;
      const bool unreadable = std::any_of(scan.problems.begin(), scan.problems.end(),
                                          [&](const std::string& problem) { return problem.rfind(path + ": ", 0) == 0; });
      if (unreadable) {
        next[path] = before;
        continue;
      }
      out += fmt::format("{} ENDED pid {} exited and removed its segment  {}\n", time_text, before.pid, before.command);
    }
    for (const std::string& problem : scan.problems) {
      if (problems_reported.insert(problem).second) out += fmt::format("{} skipped {}\n", time_text, problem);
    }
    if (rows.empty() && interval == 0) {
      out += fmt::format("{} no memtide processes in {} yet\n", time_text, absl::StrJoin(options.directories, ", "));
    }
    fmt::print("{}", out);
    fflush(stdout);
    if (absl::Status status = csv.Append(csv_rows); !status.ok()) return status;
    seen = std::move(next);
    if (options.count > 0 && interval + 1 >= options.count) break;
    if (SleepUnlessStopped(options.interval_ms)) break;
  }
  return absl::OkStatus();
}

}  // namespace memtide
