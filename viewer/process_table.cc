// See process_table.h. Runs in the CLI.
#include "process_table.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "alert_level.h"
#include "byte_format.h"
#include "fmt/format.h"
#include "printable.h"

namespace memtide {
namespace {

double Seconds(int64_t nanoseconds) { return static_cast<double>(nanoseconds) / 1e9; }

int64_t SortValue(const ProcessRow& row, SortKey key) {
  switch (key) {
    case SortKey::kRss:
      return row.rss_bytes;
    case SortKey::kHeap:
      return row.heap_current_bytes;
    case SortKey::kPeak:
      return row.heap_peak_bytes;
    case SortKey::kGpu:
      return row.gpu_current_bytes;
    case SortKey::kPid:
      return -static_cast<int64_t>(row.local_pid);
  }
  return 0;
}

nlohmann::json Bytes(int64_t current, int64_t peak) { return {{"current_bytes", current}, {"peak_bytes", peak}}; }

}  // namespace

std::string GpuUuidText(const uint8_t (&uuid)[16]) {
  std::string text = "GPU-";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += fmt::format("{:02x}", uuid[i]);
  }
  return text;
}

ProcessRow MakeProcessRow(const SegmentSnapshot& snapshot) {
  const Segment& segment = snapshot.segment;
  const SegmentCounters& c = segment.counters;
  ProcessRow row;
  row.pid = segment.pid;
  row.local_pid = snapshot.local_pid != 0 ? snapshot.local_pid : segment.pid;
  std::vector<std::string> arguments = CommandArguments(segment);
  for (std::string& argument : arguments) argument = Printable(argument);
  row.command = absl::StrJoin(arguments, " ");
  row.state = ProcessStateName(snapshot.state);
  row.path = snapshot.path;
  row.torn = snapshot.torn;
  row.heap_current_bytes = c.heap_current_bytes;
  row.heap_peak_bytes = c.heap_peak_bytes;
  row.mmap_current_bytes = c.mmap_current_bytes;
  row.rss_bytes = c.rss_bytes;
  row.rss_peak_bytes = c.rss_peak_bytes;
  row.cgroup_version = c.cgroup_version;
  row.cgroup_usage_bytes = c.cgroup_usage_bytes;
  row.cgroup_limit_bytes = c.cgroup_limit_bytes;
  // The monitor thread publishes what its alert level compares (the working set, docker stats' "usage");
  // when that is not the cgroup's (no limit below the host's memory), the raw usage stands in.
  row.cgroup_working_set_bytes = segment.policy.pressure_limit_bytes == c.cgroup_limit_bytes && c.cgroup_limit_bytes > 0
                                     ? segment.policy.pressure_used_bytes
                                     : c.cgroup_usage_bytes;
  row.alert_level = segment.policy.alert_level;
  row.trims = segment.policy.trims;
  row.trim_released_bytes = segment.policy.trim_released_bytes;

  nlohmann::json devices = nlohmann::json::array();
  uint32_t count = std::min<uint32_t>(segment.gpu_device_count, MEMTIDE_SEGMENT_GPU_DEVICES);
  for (uint32_t i = 0; i < count; ++i) {
    const SegmentGpuDevice& gpu = segment.gpu[i];
    if (gpu.ordinal < 0) continue;
    row.has_gpu = true;
    row.gpu_current_bytes += gpu.device_current_bytes;
    row.gpu_peak_bytes += gpu.device_peak_bytes;
    devices.push_back({{"ordinal", gpu.ordinal},
                       {"uuid", GpuUuidText(gpu.uuid)},
                       {"device", Bytes(gpu.device_current_bytes, gpu.device_peak_bytes)},
                       {"managed", Bytes(gpu.managed_current_bytes, gpu.managed_peak_bytes)},
                       {"pinned_host", Bytes(gpu.pinned_host_current_bytes, gpu.pinned_host_peak_bytes)},
                       {"device_used_bytes", gpu.device_used_bytes},
                       {"device_total_bytes", gpu.device_total_bytes}});
  }

  nlohmann::json cgroup = {{"version", row.cgroup_version},
                           {"usage_bytes", row.cgroup_usage_bytes},
                           {"working_set_bytes", row.cgroup_working_set_bytes},
                           {"limit_bytes", row.cgroup_limit_bytes},
                           {"percent", nullptr}};
  if (row.cgroup_limit_bytes > 0) {
    cgroup["percent"] =
        100.0 * static_cast<double>(row.cgroup_working_set_bytes) / static_cast<double>(row.cgroup_limit_bytes);
  }
  row.json = {
      {"pid", row.pid},
      {"local_pid", row.local_pid},
      {"command", arguments},
      {"state", row.state},
      {"segment", Printable(row.path)},
      {"torn", row.torn},
      {"age_s", Seconds(c.elapsed_ns)},
      {"updated_unix_s", Seconds(c.updated_unix_ns)},
      {"heap", Bytes(row.heap_current_bytes, row.heap_peak_bytes)},
      {"mmap", Bytes(row.mmap_current_bytes, c.mmap_peak_bytes)},
      {"rss", Bytes(row.rss_bytes, row.rss_peak_bytes)},
      {"gpu", nullptr},
      {"cgroup", cgroup},
      {"alert", AlertLevelName(row.alert_level)},
      {"trims", row.trims},
      {"trim_released_bytes", row.trim_released_bytes},
  };
  if (row.has_gpu) {
    row.json["gpu"] = {
        {"current_bytes", row.gpu_current_bytes}, {"peak_bytes", row.gpu_peak_bytes}, {"devices", devices}};
  }
  return row;
}

std::vector<ProcessRow> MakeProcessRows(const std::vector<SegmentSnapshot>& snapshots) {
  std::vector<ProcessRow> rows;
  rows.reserve(snapshots.size());
  for (const SegmentSnapshot& snapshot : snapshots) rows.push_back(MakeProcessRow(snapshot));
  return rows;
}

void SortProcessRows(SortKey key, std::vector<ProcessRow>* rows) {
  std::stable_sort(rows->begin(), rows->end(), [key](const ProcessRow& a, const ProcessRow& b) {
    int64_t left = SortValue(a, key), right = SortValue(b, key);
    if (left != right) return left > right;
    return a.local_pid < b.local_pid;
  });
}

std::string CgroupPercentText(const ProcessRow& row) {
  if (row.cgroup_limit_bytes <= 0) return "-";
  return fmt::format("{:.1f}%", 100.0 * static_cast<double>(row.cgroup_working_set_bytes) /
                                    static_cast<double>(row.cgroup_limit_bytes));
}

std::string ProcessTableText(const std::vector<ProcessRow>& rows, size_t width) {
  bool gpu = std::any_of(rows.begin(), rows.end(), [](const ProcessRow& row) { return row.has_gpu; });
  auto line = [&](const std::string& prefix, const std::string& command) {
    std::string text = prefix + command;
    return (width > 0 ? Truncate(text, width) : text) + "\n";
  };
  std::string header = fmt::format("{:>7} {:<8} {:>10} {:>10} {:>10}", "PID", "STATE", "HEAP", "PEAK", "MMAP");
  if (gpu) header += fmt::format(" {:>10} {:>10}", "GPU", "GPU PEAK");
  header += fmt::format(" {:>10} {:>7} {:<8} {:>5}  ", "RSS", "CGROUP", "ALERT", "TRIMS");
  std::string text = line(header, "COMMAND");
  for (const ProcessRow& row : rows) {
    std::string prefix =
        fmt::format("{:>7} {:<8} {:>10} {:>10} {:>10}", row.local_pid, row.state, HumanBytes(row.heap_current_bytes),
                    HumanBytes(row.heap_peak_bytes), HumanBytes(row.mmap_current_bytes));
    if (gpu) {
      prefix += row.has_gpu
                    ? fmt::format(" {:>10} {:>10}", HumanBytes(row.gpu_current_bytes), HumanBytes(row.gpu_peak_bytes))
                    : fmt::format(" {:>10} {:>10}", "-", "-");
    }
    prefix += fmt::format(" {:>10} {:>7} {:<8} {:>5}  ", HumanBytes(row.rss_bytes), CgroupPercentText(row),
                          AlertLevelName(row.alert_level), row.trims);
    text += line(prefix, row.command);
  }
  return text;
}

nlohmann::json ProcessRowsJson(const std::vector<ProcessRow>& rows) {
  nlohmann::json array = nlohmann::json::array();
  for (const ProcessRow& row : rows) array.push_back(row.json);
  return array;
}

}  // namespace memtide
