// `memtide export`: every segment as Prometheus metrics (prometheus_format.h). `--listen HOST:PORT` serves
// them on /metrics (default 127.0.0.1:9464: command lines are not for the whole network unless you say
// 0.0.0.0); `--textfile PATH` writes node_exporter's textfile-collector file atomically (temporary file in
// the same directory, then rename), every --interval, or once with --once. Runs in the CLI until
// interrupted.
#ifndef MEMTIDE_VIEWER_EXPORT_COMMAND_H_
#define MEMTIDE_VIEWER_EXPORT_COMMAND_H_

#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "flag_values.h"

namespace memtide {

struct ExportOptions {
  std::vector<std::string> directories;
  std::optional<ListenAddress> listen;  // none and no textfile: 127.0.0.1:9464
  std::string textfile;
  int64_t interval_ms = 15000;  // textfile refresh
  bool once = false;            // textfile: write once and exit
};

absl::Status ExportCommand(const ExportOptions& options);

// Writes `contents` to `path` so a reader sees the old file or the new one, never a part.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_EXPORT_COMMAND_H_
