// Segments as Prometheus metrics, in the text exposition format 0.0.4 that Prometheus scrapes and
// node_exporter's textfile collector reads. Labels: pid, command (argv[0]'s base name) and, for GPU
// metrics, device (the process's CUDA ordinal). Pure; runs in the CLI (`memtide export`).
#ifndef MEMTIDE_VIEWER_PROMETHEUS_FORMAT_H_
#define MEMTIDE_VIEWER_PROMETHEUS_FORMAT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "segment_reader.h"

namespace memtide {

// One series per metric and process. A pid reused while an older segment is still in the directory would
// give two series the same labels: only the newest segment of each pid is exported.
std::string PrometheusText(const std::vector<SegmentSnapshot>& snapshots, size_t refused_files);

// A label value escaped for the text format (backslash, double quote, line feed), after Printable.
std::string PrometheusLabelValue(absl::string_view text);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_PROMETHEUS_FORMAT_H_
