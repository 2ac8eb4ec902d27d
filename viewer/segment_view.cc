// See segment_view.h. Runs in the CLI.
#include "segment_view.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "byte_format.h"
#include "fmt/format.h"

namespace memtide {
namespace {

double Seconds(int64_t nanoseconds) { return static_cast<double>(nanoseconds) / 1e9; }

std::vector<std::string> DisabledFeatures(uint32_t bits) {
  std::vector<std::string> names;
  if (bits & kFeatureProcStats) names.push_back("proc_stats");
  if (bits & kFeatureCgroup) names.push_back("cgroup");
  if (bits & kFeatureMmapTable) names.push_back("mmap_table");
  return names;
}

}  // namespace

nlohmann::json MarksJson(const Segment& segment) {
  nlohmann::json marks = nlohmann::json::array();
  uint64_t total = segment.counters.marks_total;
  uint64_t first = total > MEMTIDE_SEGMENT_MARKS ? total - MEMTIDE_SEGMENT_MARKS : 0;
  for (uint64_t i = first; i < total; ++i) {
    const SegmentMark& mark = segment.marks[i % MEMTIDE_SEGMENT_MARKS];
    marks.push_back({{"label", std::string(mark.label, strnlen(mark.label, sizeof(mark.label)))},
                     {"time_s", Seconds(mark.time_ns)},
                     {"current_bytes", mark.heap_current_bytes},
                     {"peak_bytes", mark.heap_peak_bytes}});
  }
  return marks;
}

nlohmann::json CountersJson(const Segment& segment) {
  const SegmentCounters& c = segment.counters;
  return {
      {"heap",
       {{"current_bytes", c.heap_current_bytes},
        {"peak_bytes", c.heap_peak_bytes},
        {"allocations", c.heap_allocations},
        {"frees", c.heap_frees},
        {"allocated_bytes_total", c.heap_allocated_bytes_total}}},
      {"mmap", {{"current_bytes", c.mmap_current_bytes}, {"peak_bytes", c.mmap_peak_bytes}}},
      {"rss", {{"current_bytes", c.rss_bytes}, {"peak_bytes", c.rss_peak_bytes}}},
      {"cgroup",
       {{"version", c.cgroup_version}, {"usage_bytes", c.cgroup_usage_bytes}, {"limit_bytes", c.cgroup_limit_bytes}}},
      {"marks", MarksJson(segment)},
      {"marks_total", c.marks_total},
      {"disabled_features", DisabledFeatures(c.disabled_features)},
  };
}

nlohmann::json SegmentJson(const SegmentSnapshot& snapshot) {
  const Segment& segment = snapshot.segment;
  nlohmann::json json = {
      {"pid", segment.pid},
      {"uid", segment.uid},
      {"command", CommandArguments(segment)},
      {"state", ProcessStateName(snapshot.state)},
      {"exit_code", nullptr},
      {"segment", snapshot.path},
      {"start_unix_s", Seconds(segment.start_unix_ns)},
      {"age_s", Seconds(segment.counters.elapsed_ns)},
      {"updated_unix_s", Seconds(segment.counters.updated_unix_ns)},
      {"torn", snapshot.torn},
  };
  if (snapshot.state == ProcessState::kExited && segment.exit_code >= 0) json["exit_code"] = segment.exit_code;
  json.update(CountersJson(segment));
  return json;
}

std::string CountersText(const Segment& segment) {
  const SegmentCounters& c = segment.counters;
  std::string text;
  text += fmt::format("  heap    current {:>10}   peak {:>10}   allocations {}   frees {}\n",
                      HumanBytes(c.heap_current_bytes), HumanBytes(c.heap_peak_bytes),
                      GroupedCount(c.heap_allocations), GroupedCount(c.heap_frees));
  text += fmt::format("  mmap    current {:>10}   peak {:>10}\n", HumanBytes(c.mmap_current_bytes),
                      HumanBytes(c.mmap_peak_bytes));
  text += fmt::format("  rss     current {:>10}   peak {:>10}\n", HumanBytes(c.rss_bytes), HumanBytes(c.rss_peak_bytes));
  if (c.cgroup_version != kCgroupNone) {
    if (c.cgroup_limit_bytes > 0) {
      text += fmt::format("  cgroup  v{} usage {} of {} ({:.1f}%)\n", c.cgroup_version, HumanBytes(c.cgroup_usage_bytes),
                          HumanBytes(c.cgroup_limit_bytes),
                          100.0 * static_cast<double>(c.cgroup_usage_bytes) / static_cast<double>(c.cgroup_limit_bytes));
    } else {
      text += fmt::format("  cgroup  v{} usage {}, no limit\n", c.cgroup_version, HumanBytes(c.cgroup_usage_bytes));
    }
  }
  std::vector<std::string> disabled = DisabledFeatures(c.disabled_features);
  if (!disabled.empty()) text += fmt::format("  off     {}\n", absl::StrJoin(disabled, ", "));
  if (c.marks_total > 0) {
    uint64_t shown = std::min<uint64_t>(c.marks_total, MEMTIDE_SEGMENT_MARKS);
    text += fmt::format("  marks   {}{}\n", c.marks_total,
                        shown < c.marks_total ? fmt::format(" (the last {} kept)", shown) : "");
    for (const nlohmann::json& mark : MarksJson(segment)) {
      text += fmt::format("    {:>9.3f} s  {:<24} current {:>10}   peak {:>10}\n", mark["time_s"].get<double>(),
                          mark["label"].get<std::string>(), HumanBytes(mark["current_bytes"].get<int64_t>()),
                          HumanBytes(mark["peak_bytes"].get<int64_t>()));
    }
  }
  return text;
}

std::string SegmentText(const SegmentSnapshot& snapshot) {
  const Segment& segment = snapshot.segment;
  std::string state = ProcessStateName(snapshot.state);
  if (snapshot.state == ProcessState::kExited && segment.exit_code >= 0) {
    state += fmt::format(" with {}", segment.exit_code);
  } else if (snapshot.state == ProcessState::kKilled) {
    state += ": last state before it died";
  }
  std::string text = fmt::format("pid {}  {}  ({}, {:.1f} s)\n", segment.pid,
                                 absl::StrJoin(CommandArguments(segment), " "), state,
                                 Seconds(segment.counters.elapsed_ns));
  if (snapshot.torn) text += "  (the process died while publishing: values may mix two updates)\n";
  return text + CountersText(segment);
}

}  // namespace memtide
