// One row per traced process, as `memtide top`, `monitor` and `doctor` show them: the numbers a person
// compares across processes (heap, peak, mmap, GPU, RSS, cgroup share, alert level, trims), sorting, the
// fixed-width text table and the JSON objects. Pure functions of segment snapshots. Runs in the CLI.
#ifndef MEMTIDE_VIEWER_PROCESS_TABLE_H_
#define MEMTIDE_VIEWER_PROCESS_TABLE_H_

#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "flag_values.h"
#include "nlohmann/json.hpp"
#include "segment_reader.h"

namespace memtide {

struct ProcessRow {
  pid_t pid = 0;        // the writer's own pid (inside its container)
  pid_t local_pid = 0;  // as this viewer sees it; the table shows this one (what `kill` and `trim` take)
  std::string command;  // arguments joined by spaces, printable (see printable.h)
  std::string state;    // running, exited, killed
  std::string path;
  bool torn = false;
  int64_t heap_current_bytes = 0;
  int64_t heap_peak_bytes = 0;
  int64_t mmap_current_bytes = 0;
  int64_t rss_bytes = 0;
  int64_t rss_peak_bytes = 0;
  bool has_gpu = false;
  int64_t gpu_current_bytes = 0;  // summed over the process's devices
  int64_t gpu_peak_bytes = 0;     // sum of the per-device peaks
  uint32_t cgroup_version = 0;
  int64_t cgroup_usage_bytes = 0;
  int64_t cgroup_limit_bytes = 0;        // 0: no limit
  int64_t cgroup_working_set_bytes = 0;  // usage less inactive page cache: what the alert level compares
  uint32_t alert_level = 0;
  uint64_t trims = 0;
  int64_t trim_released_bytes = 0;
  nlohmann::json json;  // the whole row, with per-device GPU detail (RowsJson)
};

ProcessRow MakeProcessRow(const SegmentSnapshot& snapshot);
std::vector<ProcessRow> MakeProcessRows(const std::vector<SegmentSnapshot>& snapshots);
// Largest first (pid: smallest first); ties by pid, so the order is stable between refreshes.
void SortProcessRows(SortKey key, std::vector<ProcessRow>* rows);

// The working set's share of the cgroup limit, as the alert level sees it: "45.2%", or "-" without a limit.
std::string CgroupPercentText(const ProcessRow& row);
// GPU UUID as nvidia-smi prints it: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
std::string GpuUuidText(const uint8_t (&uuid)[16]);

// The table with a header line; GPU columns only when a row has GPU counters. `width` > 0 cuts each line
// (the command column) to that many columns, for a terminal.
std::string ProcessTableText(const std::vector<ProcessRow>& rows, size_t width);
nlohmann::json ProcessRowsJson(const std::vector<ProcessRow>& rows);

}  // namespace memtide

#endif  // MEMTIDE_VIEWER_PROCESS_TABLE_H_
