// See segment_view.h. Runs in the CLI.
#include "segment_view.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "alert_level.h"
#include "allocator_name.h"
#include "byte_format.h"
#include "fmt/format.h"
#include "printable.h"
#include "process_table.h"
#include "show_sections.h"
#include "trim_policy.h"

namespace memtide {
namespace {

double Seconds(int64_t nanoseconds) { return static_cast<double>(nanoseconds) / 1e9; }

// The devices the process used, one flat object each (README, "GPU memory"): `index` is the process's
// ordinal, `uuid` the device's identity across processes (ordinals differ under CUDA_VISIBLE_DEVICES).
nlohmann::json GpuJson(const Segment& segment) {
  nlohmann::json devices = nlohmann::json::array();
  uint32_t count = std::min<uint32_t>(segment.gpu_device_count, MEMTIDE_SEGMENT_GPU_DEVICES);
  for (uint32_t i = 0; i < count; ++i) {
    const SegmentGpuDevice& g = segment.gpu[i];
    if (g.ordinal < 0) continue;
    devices.push_back({{"uuid", GpuUuidText(g.uuid)},
                       {"index", g.ordinal},
                       {"current_bytes", g.device_current_bytes},
                       {"peak_bytes", g.device_peak_bytes},
                       {"managed_bytes", g.managed_current_bytes},
                       {"managed_peak_bytes", g.managed_peak_bytes},
                       {"pinned_host_bytes", g.pinned_host_current_bytes},
                       {"pinned_host_peak_bytes", g.pinned_host_peak_bytes},
                       {"host_registered_bytes", g.host_registered_bytes},
                       {"imported_bytes", g.imported_bytes},
                       {"array_bytes", g.array_bytes},
                       {"pool_reserved_bytes", g.pool_reserved_bytes},
                       {"device_used_bytes", g.device_used_bytes},
                       {"device_total_bytes", g.device_total_bytes},
                       {"allocations", g.allocations},
                       {"frees", g.frees},
                       {"unknown_frees", g.unknown_frees}});
  }
  return devices;
}

std::vector<std::string> DisabledFeatures(uint32_t bits) {
  std::vector<std::string> names;
  if (bits & kFeatureProcStats) names.push_back("proc_stats");
  if (bits & kFeatureCgroup) names.push_back("cgroup");
  if (bits & kFeatureMmapTable) names.push_back("mmap_table");
  if (bits & kFeatureHeapHooks) names.push_back("heap_hooks");
  return names;
}

const char* ThresholdSourceName(uint32_t source) {
  switch (source) {
    case kThresholdMemtide: return "MEMTIDE_TRIM_THRESHOLD";
    case kThresholdGlibc: return "MALLOC_TRIM_THRESHOLD_";
  }
  return "default";
}

nlohmann::json TrimJson(const SegmentMemoryPolicy& policy) {
  return {
      {"trims", policy.trims},
      {"released_bytes", policy.trim_released_bytes},
      {"time_s", Seconds(policy.trim_ns)},
      {"threshold_bytes", policy.trim_threshold_bytes},
      {"threshold_from", ThresholdSourceName(policy.threshold_source)},
      {"last_reason", TrimReasonName(static_cast<TrimReason>(policy.last_trim_reason))},
      {"last_rss_before_bytes", policy.last_trim_rss_before_bytes},
      {"last_rss_after_bytes", policy.last_trim_rss_after_bytes},
      {"allocator_free_bytes", policy.allocator_free_bytes >= 0 ? nlohmann::json(policy.allocator_free_bytes)
                                                                : nlohmann::json(nullptr)},
  };
}

nlohmann::json AlertJson(const SegmentMemoryPolicy& policy) {
  nlohmann::json entries = nlohmann::json::object();
  for (uint32_t level = kAlertWarning; level <= kAlertDanger; ++level) {
    entries[AlertLevelName(level)] = policy.alert_entries[level];
  }
  return {
      {"level", AlertLevelName(policy.alert_level)},
      {"entries", entries},
      {"used_bytes", policy.pressure_used_bytes},
      {"limit_bytes", policy.pressure_limit_bytes},
  };
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
      {"gpu", GpuJson(segment)},
      {"marks", MarksJson(segment)},
      {"marks_total", c.marks_total},
      {"disabled_features", DisabledFeatures(c.disabled_features)},
      {"allocator", AllocatorName(segment.policy.allocator)},
      {"trim", TrimJson(segment.policy)},
      {"alert", AlertJson(segment.policy)},
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
  json.update(CountersJson(segment));  // the report's "gpu" array too: one schema for both
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
  const SegmentMemoryPolicy& policy = segment.policy;
  if (policy.pressure_limit_bytes > 0) {
    text += fmt::format("  alert   {}: {} of {} in use ({:.1f}%)\n", AlertLevelName(policy.alert_level),
                        HumanBytes(policy.pressure_used_bytes), HumanBytes(policy.pressure_limit_bytes),
                        100.0 * static_cast<double>(policy.pressure_used_bytes) /
                            static_cast<double>(policy.pressure_limit_bytes));
  }
  if (policy.trims > 0) {
    text += fmt::format("  trims   {} ({}), released {} in {:.3f} s, last {} ({} -> {})\n", policy.trims,
                        AllocatorName(policy.allocator), HumanBytes(policy.trim_released_bytes),
                        Seconds(policy.trim_ns),
                        TrimReasonName(static_cast<TrimReason>(policy.last_trim_reason)),
                        HumanBytes(policy.last_trim_rss_before_bytes), HumanBytes(policy.last_trim_rss_after_bytes));
  }
  std::vector<std::string> disabled = DisabledFeatures(c.disabled_features);
  if (!disabled.empty()) text += fmt::format("  off     {}\n", absl::StrJoin(disabled, ", "));
  text += GpuBucketsText(segment);     // show_sections.h
  text += MarksTimelineText(segment);  // the marks with the change between them
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
                                 Printable(absl::StrJoin(CommandArguments(segment), " ")), state,
                                 Seconds(segment.counters.elapsed_ns));
  if (snapshot.torn) text += "  (the process died while publishing: values may mix two updates)\n";
  return text + CountersText(segment);
}

}  // namespace memtide
