// `memtide monitor --interval 60 [--csv FILE]`: for logs. Every interval, one line per traced process
// (time, pid, state, heap, peak, mmap, GPU, RSS, cgroup share, alert level, trims, command); a process that
// ended gets one last line saying how. Alert-level changes stand out ("ALERT" lines), and --csv appends the
// same rows to FILE for spreadsheets. Runs in the CLI until interrupted (or --count intervals).
#ifndef MEMTIDE_VIEWER_MONITOR_COMMAND_H_
#define MEMTIDE_VIEWER_MONITOR_COMMAND_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace memtide {

struct MonitorOptions {
  std::vector<std::string> directories;
  int64_t interval_ms = 60000;
  std::string csv_path;
  int64_t count = 0;  // intervals before exiting; 0: until interrupted
};

absl::Status MonitorCommand(const MonitorOptions& options);

// The CSV header, and one field quoted as RFC 4180 wants (always quoted, quotes doubled, line breaks made
// spaces so one row stays one line).
std::string MonitorCsvHeader();
std::string CsvField(absl::string_view text);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_MONITOR_COMMAND_H_
